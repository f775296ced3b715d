"""Anthropic Messages on the wire: ``POST /v1/messages`` (plain and streamed) and
``POST /v1/messages/count_tokens``.

Shapes follow Anthropic's API reference: a ``message`` object; the stream's event sequence
``message_start``, ``content_block_start``, ``ping``, ``content_block_delta`` (``text_delta`` or
``input_json_delta``), ``content_block_stop``, ``message_delta`` (stop reason and usage),
``message_stop``; errors as ``{"type": "error", "error": {"type", "message"}}``. As the real API
does, ``input_tokens`` excludes the prompt tokens read from the cache
(``cache_read_input_tokens``).
"""

from __future__ import annotations

from typing import Any

import orjson

from services.vendorsim.conversation import (
    Conversation,
    OutputFormat,
    ToolChoiceMode,
    ToolSpec,
    Turn,
)
from services.vendorsim.protocols.wire import BadRequest, ErrorAnswer, StreamFrames
from services.vendorsim.reply import Finish, Reply, Usage
from services.vendorsim.tokens import count_prompt_tokens

_STOP = {Finish.STOP: "end_turn", Finish.LENGTH: "max_tokens", Finish.TOOL_CALL: "tool_use"}
_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_HOLE = "\x00fragment\x00"
_HOLE_JSON = orjson.dumps(_HOLE)


class AnthropicMessages:
    malformed_frame = b"event: content_block_delta\ndata: {not json\n\n"
    request_id_header = b"request-id"

    def parse(self, body: bytes) -> Conversation:
        conversation = _conversation(body)
        if conversation.max_tokens is None:
            raise BadRequest("max_tokens: Field required")
        return conversation

    def render(self, conversation: Conversation, reply: Reply, serial: str) -> bytes:
        block: dict[str, Any]
        if reply.tool_call:
            call = reply.tool_call
            arguments = orjson.loads(call.arguments)
            block = {"type": "tool_use", "id": f"toolu_{call.call_id}", "name": call.name}
            block["input"] = arguments
        else:
            block = {"type": "text", "text": reply.text}
        message = _message(conversation, serial, reply.usage, reply.usage.completion_tokens)
        message.update(content=[block], stop_reason=_STOP[reply.finish])
        return orjson.dumps(message)

    def stream(self, conversation: Conversation, reply: Reply, serial: str) -> StreamFrames:
        start = _message(conversation, serial, reply.usage, output_tokens=1)
        call = reply.tool_call
        if call:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": f"toolu_{call.call_id}",
                "name": call.name,
                "input": {},
            }
            delta: dict[str, Any] = {"type": "input_json_delta", "partial_json": _HOLE}
            pieces = call.fragments
        else:
            block = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": _HOLE}
            pieces = reply.fragments
        head = (
            _event("message_start", {"type": "message_start", "message": start})
            + _event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": block},
            )
            + _event("ping", {"type": "ping"})
        )
        # One template for every token frame: only the fragment varies.
        before, after = _event(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        ).split(_HOLE_JSON)
        tokens = tuple(before + orjson.dumps(piece) + after for piece in pieces)
        usage = _usage(reply.usage, reply.usage.completion_tokens)
        del usage["service_tier"]
        tail = (
            _event("content_block_stop", {"type": "content_block_stop", "index": 0})
            + _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": _STOP[reply.finish], "stop_sequence": None},
                    "usage": usage,
                },
            )
            + _event("message_stop", {"type": "message_stop"})
        )
        return StreamFrames(head=head, tokens=tokens, tail=tail)

    def error(self, status: int, message: str) -> ErrorAnswer:
        kind = _ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
        body = {"type": "error", "error": {"type": kind, "message": message}}
        return ErrorAnswer(status, orjson.dumps(body))


def count_tokens_answer(body: bytes) -> bytes:
    """``POST /v1/messages/count_tokens``: the prompt tokens of a Messages request."""
    return orjson.dumps({"input_tokens": count_prompt_tokens(_conversation(body))})


def models_page(models: list[str]) -> bytes:
    """``GET /v1/models`` in Anthropic's list shape."""
    data = [
        {
            "type": "model",
            "id": model,
            "display_name": f"{model} (simulated)",
            "created_at": "2025-01-01T00:00:00Z",
        }
        for model in models
    ]
    return orjson.dumps(
        {
            "data": data,
            "has_more": False,
            "first_id": models[0] if models else None,
            "last_id": models[-1] if models else None,
        }
    )


def _message(
    conversation: Conversation, serial: str, usage: Usage, output_tokens: int
) -> dict[str, Any]:
    return {
        "id": f"msg_{serial}",
        "type": "message",
        "role": "assistant",
        "model": conversation.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(usage, output_tokens),
    }


def _usage(usage: Usage, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens - usage.cached_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _conversation(body: bytes) -> Conversation:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required")
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise BadRequest("messages: Field required")
    turns = [_turn(message) for message in messages]
    system = data.get("system")
    if system:
        # A system prompt counts as a message, as OpenAI's system message does, so one
        # conversation has one token count under both protocols.
        text, images = _content(system)
        turns.insert(0, Turn(role="system", text=text, images=images))
    tool_choice, tool_name = _tool_choice(data.get("tool_choice"))
    output_format, schema = _output_format(data)
    return Conversation(
        model=model,
        turns=tuple(turns),
        tools=_tools(data.get("tools")),
        tool_choice=tool_choice,
        tool_choice_name=tool_name,
        max_tokens=_max_tokens(data.get("max_tokens")),
        output_format=output_format,
        output_schema=schema,
        stream=data.get("stream") is True,
    )


def _turn(message: object) -> Turn:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise BadRequest("messages: each message needs a role and content")
    text, images = _content(message.get("content"))
    return Turn(role=message["role"], text=text, images=images)


def _content(content: object) -> tuple[str, int]:
    """The text and the number of images in a content string or list of blocks."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        raise BadRequest("content must be a string or an array of content blocks")
    texts: list[str] = []
    images = 0
    for block in content:
        if not isinstance(block, dict):
            raise BadRequest("each content block must be an object")
        match block.get("type"):
            case "text":
                texts.append(str(block.get("text", "")))
            case "thinking":
                texts.append(str(block.get("thinking", "")))
            case "image" | "document":
                images += 1
            case "tool_use":
                arguments = orjson.dumps(block.get("input", {})).decode()
                texts.append(f"{block.get('name', '')} {arguments}")
            case "tool_result":
                inner = block.get("content", "")
                text, inner_images = _content(inner if inner is not None else "")
                texts.append(text)
                images += inner_images
    return "\n".join(texts), images


def _tools(value: object) -> tuple[ToolSpec, ...]:
    if not isinstance(value, list):
        return ()
    tools = []
    for tool in value:
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise BadRequest("tools: each tool needs a name")
        schema = tool.get("input_schema")
        tools.append(
            ToolSpec(
                name=tool["name"],
                description=str(tool.get("description") or ""),
                parameters=schema if isinstance(schema, dict) else {},
            )
        )
    return tuple(tools)


def _tool_choice(value: object) -> tuple[ToolChoiceMode, str | None]:
    if not isinstance(value, dict):
        return ToolChoiceMode.AUTO, None
    match value.get("type"):
        case "none":
            return ToolChoiceMode.NONE, None
        case "any":
            return ToolChoiceMode.REQUIRED, None
        case "tool" if isinstance(value.get("name"), str):
            return ToolChoiceMode.NAMED, value["name"]
    return ToolChoiceMode.AUTO, None


def _output_format(data: dict[str, Any]) -> tuple[OutputFormat, dict[str, Any] | None]:
    # Structured outputs: ``output_config.format`` now, ``output_format`` in the beta.
    config = data.get("output_config")
    spec = config.get("format") if isinstance(config, dict) else data.get("output_format")
    if isinstance(spec, dict) and spec.get("type") == "json_schema":
        schema = spec.get("schema")
        return OutputFormat.JSON_SCHEMA, schema if isinstance(schema, dict) else None
    return OutputFormat.TEXT, None


def _max_tokens(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest("max_tokens: must be a positive integer")
    return value
