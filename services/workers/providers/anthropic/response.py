"""Messages answers: their wire shapes (lenient: extra fields are ignored) and their reading
into the contract.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from contracts.chat import ChatResponse, FinishReason, TextPart, ToolCallPart, Usage
from services.workers.providers._decoding import parse_wire
from services.workers.providers.base import VendorProtocolError


class Lenient(BaseModel):
    """Base of the wire models: unknown fields are ignored, as vendors add fields freely."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class BlockWire(Lenient):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None


class UsageWire(Lenient):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class MessageWire(Lenient):
    id: str | None = None
    model: str | None = None
    content: list[BlockWire]
    stop_reason: str | None = None
    usage: UsageWire | None = None


class StartedMessageWire(Lenient):
    id: str | None = None
    model: str | None = None
    usage: UsageWire | None = None


class EventDeltaWire(Lenient):
    type: str | None = (
        None  # text_delta, input_json_delta, thinking_delta, ...; None on message_delta
    )
    text: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None


class ErrorObjectWire(Lenient):
    type: str | None = None
    message: str | None = None


class StreamEventWire(Lenient):
    type: str
    index: int | None = None
    message: StartedMessageWire | None = None
    content_block: BlockWire | None = None
    delta: EventDeltaWire | None = None
    usage: UsageWire | None = None
    error: ErrorObjectWire | None = None


_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,  # only with server tools, which we never send
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}


def finish_reason_of(stop_reason: str | None) -> FinishReason:
    return _STOP_REASONS.get(stop_reason or "end_turn", FinishReason.STOP)


def usage_of(usage: UsageWire) -> Usage:
    cache_read = usage.cache_read_input_tokens or 0
    cache_write = usage.cache_creation_input_tokens or 0
    # Anthropic's input_tokens excludes cached tokens; ours counts every prompt token.
    return Usage(
        input_tokens=(usage.input_tokens or 0) + cache_read + cache_write,
        output_tokens=usage.output_tokens or 0,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def tool_call_part(block: BlockWire) -> ToolCallPart:
    if not block.id or not block.name:
        raise VendorProtocolError("tool_use block without id or name")
    return ToolCallPart(
        id=block.id, name=block.name, arguments=orjson.dumps(block.input or {}).decode()
    )


def read_message(body: bytes) -> ChatResponse:
    """A whole Messages body as a finished turn."""
    message = parse_wire(MessageWire, body, what="message")
    content: list[TextPart | ToolCallPart] = []
    for block in message.content:
        if block.type == "text" and block.text:
            content.append(TextPart(text=block.text))
        elif block.type == "tool_use":
            content.append(tool_call_part(block))
        # thinking, redacted_thinking and server-tool blocks are not part of the answer.
    return ChatResponse(
        content=content,
        finish_reason=finish_reason_of(message.stop_reason),
        usage=usage_of(message.usage) if message.usage else Usage(),
        vendor_response_id=message.id,
        vendor_model=message.model,
    )
