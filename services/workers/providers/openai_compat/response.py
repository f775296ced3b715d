"""Chat Completions answers: their wire shapes (lenient: extra fields are ignored, the copies
differ in small ways) and their reading into the contract.
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


class FunctionWire(Lenient):
    name: str | None = None
    # A few copies send parsed objects instead of JSON text.
    arguments: str | dict[str, Any] | None = None


class ToolCallWire(Lenient):
    index: int | None = None
    id: str | None = None
    function: FunctionWire | None = None


class ContentChunkWire(Lenient):
    type: str
    text: str | None = None


class MessageWire(Lenient):
    # Mistral's reasoning models answer with a list of typed chunks.
    content: str | list[ContentChunkWire] | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallWire] | None = None
    function_call: FunctionWire | None = None


class ChoiceWire(Lenient):
    index: int = 0
    message: MessageWire
    finish_reason: str | None = None


class PromptDetailsWire(Lenient):
    cached_tokens: int | None = None


class CompletionDetailsWire(Lenient):
    reasoning_tokens: int | None = None


class UsageWire(Lenient):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: PromptDetailsWire | None = None
    completion_tokens_details: CompletionDetailsWire | None = None
    prompt_cache_hit_tokens: int | None = None  # DeepSeek
    cached_tokens: int | None = None  # Moonshot


class CompletionWire(Lenient):
    id: str | None = None
    model: str | None = None
    choices: list[ChoiceWire]
    usage: UsageWire | None = None


class DeltaWire(Lenient):
    content: str | list[ContentChunkWire] | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallWire] | None = None


class ChunkChoiceWire(Lenient):
    index: int = 0
    delta: DeltaWire | None = None
    finish_reason: str | None = None
    usage: UsageWire | None = None  # Moonshot reports stream usage inside the choice


class ErrorBodyWire(Lenient):
    message: Any = None
    type: str | None = None
    code: Any = None
    param: str | None = None


class ChunkWire(Lenient):
    id: str | None = None
    model: str | None = None
    choices: list[ChunkChoiceWire] = []
    usage: UsageWire | None = None
    error: ErrorBodyWire | None = None


_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
    "model_length": FinishReason.LENGTH,  # Mistral: the context window, not max_tokens, ran out
    "sensitive": FinishReason.CONTENT_FILTER,  # Z.ai
    # DeepSeek and Z.ai cut the answer short on their side; "length" is the one signal clients
    # already read as "this answer is incomplete".
    "insufficient_system_resource": FinishReason.LENGTH,
    "network_error": FinishReason.LENGTH,
}


def finish_reason_of(raw: str | None, *, has_tool_calls: bool) -> FinishReason:
    reason = _FINISH_REASONS.get(raw or "stop", FinishReason.STOP)
    # Some copies (Gemini's among them) say "stop" after calling tools; clients loop on
    # "tool_calls", so the content wins.
    if has_tool_calls and reason is FinishReason.STOP:
        return FinishReason.TOOL_CALLS
    return reason


def usage_of(usage: UsageWire) -> Usage:
    cache_read = (
        (usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else None)
        or usage.prompt_cache_hit_tokens
        or usage.cached_tokens
        or 0
    )
    details = usage.completion_tokens_details
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cache_read_tokens=cache_read,
        reasoning_tokens=(details.reasoning_tokens if details else None) or 0,
    )


def message_text(content: str | list[ContentChunkWire] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    # Only "text" chunks are the answer; "thinking" chunks are the model's scratchpad.
    return "".join(chunk.text or "" for chunk in content if chunk.type == "text")


def arguments_text(function: FunctionWire) -> str:
    if isinstance(function.arguments, dict):
        return orjson.dumps(function.arguments).decode()
    return function.arguments or "{}"


def tool_call_part(call: ToolCallWire, position: int, response_id: str | None) -> ToolCallPart:
    if call.function is None or not call.function.name:
        raise VendorProtocolError("tool call without a function name")
    # An id is needed to pair the result later; legacy function_call answers carry none.
    call_id = call.id or f"call_{response_id or 'x'}_{position}"
    return ToolCallPart(
        id=call_id, name=call.function.name, arguments=arguments_text(call.function)
    )


def read_completion(body: bytes) -> ChatResponse:
    """A whole ``chat.completion`` body as a finished turn."""
    completion = parse_wire(CompletionWire, body, what="chat completion")
    if not completion.choices:
        raise VendorProtocolError("chat completion has no choices")
    choice = min(completion.choices, key=lambda c: c.index)
    content: list[TextPart | ToolCallPart] = []
    text = message_text(choice.message.content) or choice.message.refusal or ""
    if text:
        content.append(TextPart(text=text))
    for position, call in enumerate(choice.message.tool_calls or ()):
        content.append(tool_call_part(call, position, completion.id))
    if choice.message.function_call is not None and not choice.message.tool_calls:
        content.append(
            tool_call_part(ToolCallWire(function=choice.message.function_call), 0, completion.id)
        )
    has_calls = any(isinstance(part, ToolCallPart) for part in content)
    return ChatResponse(
        content=content,
        finish_reason=finish_reason_of(choice.finish_reason, has_tool_calls=has_calls),
        usage=usage_of(completion.usage) if completion.usage else Usage(),
        vendor_response_id=completion.id,
        vendor_model=completion.model,
    )
