"""The Anthropic Messages protocol.

Owns the translation of the contract's chat schema into ``POST {base_url}/v1/messages``, the
reading of its JSON and SSE answers, and the classification of its errors. Where the contract
asks for something Messages cannot say, the choice made is written next to the code:
``max_tokens`` defaults, temperature range, JSON output, unparseable tool arguments, and the
sampling knobs Anthropic does not have (seed, penalties, reasoning effort: dropped).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from contracts.chat import (
    ChatDelta,
    ChatRequest,
    ChatResponse,
    FinishReason,
    ImagePart,
    ResponseFormat,
    Role,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolChoice,
    ToolChoiceMode,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from contracts.errors import ErrorCode, ErrorInfo
from services.workers.providers._decoding import load_json, parse_wire, validate_wire
from services.workers.providers.base import (
    ProviderEndpoint,
    RequestTranslationError,
    VendorProtocolError,
    VendorRequest,
    VendorStreamError,
    body_excerpt,
    excerpt,
)
from services.workers.providers.retry_after import retry_after_seconds

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "AnthropicAdapter",
    "AnthropicStreamDecoder",
    "classify_anthropic_error",
]

ANTHROPIC_VERSION = "2023-06-01"
# Anthropic requires max_tokens. 4096 is the largest value every Claude model accepts (the
# smallest model output cap), so a caller who set nothing never gets a 400 for our default.
DEFAULT_MAX_TOKENS = 4096
# Anthropic's temperature range is [0, 1]; OpenAI's is [0, 2]. Clamping keeps an OpenAI
# client's 1.2 working on Claude, at the nearest value Claude allows.
MAX_TEMPERATURE = 1.0
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


class AnthropicAdapter:
    """The ``ProviderAdapter`` for the Messages protocol."""

    def build_request(
        self, endpoint: ProviderEndpoint, model: str, chat: ChatRequest, *, stream: bool
    ) -> VendorRequest:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "anthropic-version": ANTHROPIC_VERSION,
        }
        if endpoint.api_key:
            headers["x-api-key"] = endpoint.api_key
        return VendorRequest(
            url=f"{endpoint.base_url.rstrip('/')}/v1/messages",
            headers=headers,
            json=_request_body(model, chat, stream=stream),
        )

    def parse_response(self, body: bytes) -> ChatResponse:
        message = parse_wire(_Message, body, what="message")
        content: list[TextPart | ToolCallPart] = []
        for block in message.content:
            if block.type == "text" and block.text:
                content.append(TextPart(text=block.text))
            elif block.type == "tool_use":
                content.append(_tool_call_part(block))
            # thinking, redacted_thinking and server-tool blocks are not part of the answer.
        return ChatResponse(
            content=content,
            finish_reason=_finish_reason(message.stop_reason),
            usage=_usage(message.usage) if message.usage else Usage(),
            vendor_response_id=message.id,
            vendor_model=message.model,
        )

    def stream_decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
        return classify_anthropic_error(status, headers, body)


# ---- request translation -------------------------------------------------------------------


def _request_body(model: str, chat: ChatRequest, *, stream: bool) -> dict[str, Any]:
    sampling = chat.sampling
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": sampling.max_output_tokens or DEFAULT_MAX_TOKENS,
        "messages": _messages(chat),
    }
    system = _system(chat.system, chat.response_format)
    if system:
        body["system"] = system
    if chat.tools:
        body["tools"] = [_tool(spec) for spec in chat.tools]
        if chat.tool_choice is not None:
            body["tool_choice"] = _tool_choice(chat.tool_choice)
    if sampling.temperature is not None:
        body["temperature"] = min(max(sampling.temperature, 0.0), MAX_TEMPERATURE)
    # Recent Claude models reject temperature and top_p together; temperature is the one
    # callers set far more often, so top_p only goes when it is alone.
    if sampling.top_p is not None and sampling.temperature is None:
        body["top_p"] = sampling.top_p
    if sampling.top_k is not None:
        body["top_k"] = sampling.top_k
    if sampling.stop:
        body["stop_sequences"] = list(sampling.stop)
    if chat.user:
        body["metadata"] = {"user_id": chat.user}
    if stream:
        body["stream"] = True
    return body


def _system(system: str | None, fmt: ResponseFormat | None) -> str:
    # Messages has no JSON mode. The instruction goes in the system prompt, the place Claude
    # weighs most; unlike forcing a tool call, it leaves the answer as ordinary text, which is
    # what a JSON-mode caller reads. It is best effort: the output is not validated.
    parts = [system] if system else []
    if fmt is not None and fmt.type == "json_object":
        parts.append(
            "Respond with a single JSON object and nothing else: no prose, no code fences."
        )
    elif fmt is not None and fmt.type == "json_schema":
        schema = orjson.dumps(fmt.json_schema or {}).decode()
        parts.append(
            "Respond with a single JSON value that conforms to the JSON Schema below, and "
            f"nothing else: no prose, no code fences.\n<json_schema>\n{schema}\n</json_schema>"
        )
    return "\n\n".join(parts)


def _messages(chat: ChatRequest) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in chat.messages:
        role = "assistant" if message.role is Role.ASSISTANT else "user"
        blocks = [block for part in message.content if (block := _block(part, role)) is not None]
        if not blocks:
            continue  # Anthropic rejects empty turns
        # Tool results arrive as their own (tool-role) messages; Messages wants them inside
        # the user turn, and turns must alternate, so neighbours of one role are merged.
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":
            # tool_result blocks must open the user turn that answers a tool_use.
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    if turns and turns[-1]["role"] == "assistant":
        # A prefilled final assistant turn may not end in whitespace.
        last = turns[-1]["content"][-1]
        if last["type"] == "text":
            last["text"] = last["text"].rstrip()
            if not last["text"]:
                turns[-1]["content"].pop()
                if not turns[-1]["content"]:
                    turns.pop()
    return turns


def _block(
    part: TextPart | ImagePart | ToolCallPart | ToolResultPart, role: str
) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ImagePart):
        # Assistant turns cannot carry images in Messages; they are dropped.
        return _image(part) if role == "user" else None
    if isinstance(part, ToolCallPart):
        if role != "assistant":
            raise RequestTranslationError(
                "tool calls may only appear in assistant messages", param="messages"
            )
        return {
            "type": "tool_use",
            "id": _block_id(part.id),
            "name": part.name,
            "input": _tool_input(part.arguments),
        }
    if role != "user":
        raise RequestTranslationError(
            "tool results may not appear in assistant messages", param="messages"
        )
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": _block_id(part.tool_call_id)}
    content = [block for p in part.content if (block := _block(p, "user")) is not None]
    if content:
        result["content"] = content
    if part.is_error:
        result["is_error"] = True
    return result


def _tool_input(arguments: str) -> dict[str, Any]:
    # Messages needs an object, but the model that made this call (perhaps another vendor's)
    # may have produced invalid JSON. The call is replayed with {} rather than failing the
    # whole request: the tool result the client sent back already tells the model what went
    # wrong, and the conversation stays usable.
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


_BLOCK_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def _block_id(call_id: str) -> str:
    # Anthropic ids must match ^[a-zA-Z0-9_-]+$; other vendors' ids may not.
    return _BLOCK_ID_UNSAFE.sub("_", call_id) or "call"


def _image(part: ImagePart) -> dict[str, Any]:
    url = part.url
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    if not url.startswith("data:"):
        raise RequestTranslationError("images must be http(s) or data: URLs", param="messages")
    header, comma, data = url[len("data:") :].partition(",")
    media_type, *params = header.split(";")
    if not comma or "base64" not in params:
        raise RequestTranslationError("data: URL images must be base64", param="messages")
    media_type = media_type.lower()
    if media_type not in IMAGE_MEDIA_TYPES:
        raise RequestTranslationError(
            f"image type {media_type or 'unknown'} is not accepted by Anthropic "
            f"(accepted: {', '.join(sorted(IMAGE_MEDIA_TYPES))})",
            param="messages",
        )
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }


def _tool(spec: ToolSpec) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": spec.name, "input_schema": spec.parameters}
    if spec.description is not None:
        tool["description"] = spec.description
    return tool


def _tool_choice(choice: ToolChoice) -> dict[str, Any]:
    if choice.mode is ToolChoiceMode.NONE:
        return {"type": "none"}
    if choice.mode is ToolChoiceMode.TOOL:
        if not choice.name:
            raise RequestTranslationError("tool_choice names no tool", param="tool_choice")
        out: dict[str, Any] = {"type": "tool", "name": choice.name}
    elif choice.mode is ToolChoiceMode.REQUIRED:
        out = {"type": "any"}
    else:
        out = {"type": "auto"}
    if choice.parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


# ---- wire shapes of answers (private; lenient: extra fields are ignored) ----------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Block(_Wire):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None


class _Usage(_Wire):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class _Message(_Wire):
    id: str | None = None
    model: str | None = None
    content: list[_Block]
    stop_reason: str | None = None
    usage: _Usage | None = None


class _StartedMessage(_Wire):
    id: str | None = None
    model: str | None = None
    usage: _Usage | None = None


class _EventDelta(_Wire):
    type: str | None = (
        None  # text_delta, input_json_delta, thinking_delta, ...; None on message_delta
    )
    text: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None


class _ErrorObject(_Wire):
    type: str | None = None
    message: str | None = None


class _StreamEvent(_Wire):
    type: str
    index: int | None = None
    message: _StartedMessage | None = None
    content_block: _Block | None = None
    delta: _EventDelta | None = None
    usage: _Usage | None = None
    error: _ErrorObject | None = None


# ---- reading answers -----------------------------------------------------------------------

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,  # only with server tools, which we never send
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}


def _finish_reason(stop_reason: str | None) -> FinishReason:
    return _STOP_REASONS.get(stop_reason or "end_turn", FinishReason.STOP)


def _usage(usage: _Usage) -> Usage:
    cache_read = usage.cache_read_input_tokens or 0
    cache_write = usage.cache_creation_input_tokens or 0
    # Anthropic's input_tokens excludes cached tokens; ours counts every prompt token.
    return Usage(
        input_tokens=(usage.input_tokens or 0) + cache_read + cache_write,
        output_tokens=usage.output_tokens or 0,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def _tool_call_part(block: _Block) -> ToolCallPart:
    if not block.id or not block.name:
        raise VendorProtocolError("tool_use block without id or name")
    return ToolCallPart(
        id=block.id, name=block.name, arguments=orjson.dumps(block.input or {}).decode()
    )


class AnthropicStreamDecoder:
    """Decodes one Messages event stream.

    Usage is spread over the stream: ``message_start`` has the input side, ``message_delta``
    the cumulative output (and, on newer API versions, cumulative input fields); the decoder
    merges them and sends usage with the finish reason on ``message_stop``.
    """

    def __init__(self) -> None:
        self._usage: dict[str, int] = {}
        self._stop_reason: str | None = None
        # Anthropic indexes every content block; the contract numbers tool calls 0..n.
        self._tool_index_by_block: dict[int, int] = {}
        self._done = False

    @property
    def finished(self) -> bool:
        return self._done

    def feed(self, event: str, data: str) -> list[ChatDelta]:
        if self._done or not data.strip():
            return []
        payload = load_json(data, what="stream event")
        if isinstance(payload, dict) and "type" not in payload and event:
            payload = {**payload, "type": event}
        parsed = validate_wire(_StreamEvent, payload, what="stream event")
        kind = parsed.type
        if kind == "message_start":
            if parsed.message is None:
                raise VendorProtocolError("message_start without a message")
            self._merge_usage(parsed.message.usage)
        elif kind == "content_block_start":
            return self._block_start(parsed)
        elif kind == "content_block_delta":
            return self._block_delta(parsed)
        elif kind == "message_delta":
            if parsed.delta is not None and parsed.delta.stop_reason:
                self._stop_reason = parsed.delta.stop_reason
            self._merge_usage(parsed.usage)
        elif kind == "message_stop":
            self._done = True
            return [self._final()]
        elif kind == "error":
            error = parsed.error or _ErrorObject()
            raise VendorStreamError(_classify(error.type, error.message or "", status=None))
        # ping, content_block_stop and event types added after this was written carry nothing
        # we need; Anthropic documents that unknown events should be ignored.
        return []

    def _block_start(self, event: _StreamEvent) -> list[ChatDelta]:
        block = event.content_block
        if block is None or event.index is None:
            raise VendorProtocolError("content_block_start without a block or index")
        if block.type == "text" and block.text:
            return [ChatDelta(text=block.text)]
        if block.type != "tool_use":
            return []
        if not block.id or not block.name:
            raise VendorProtocolError("tool_use block without id or name")
        index = len(self._tool_index_by_block)
        self._tool_index_by_block[event.index] = index
        # The input arrives as input_json_delta fragments; the start block's {} is a
        # placeholder, not a fragment.
        return [ChatDelta(tool_call=ToolCallDelta(index=index, id=block.id, name=block.name))]

    def _block_delta(self, event: _StreamEvent) -> list[ChatDelta]:
        delta = event.delta
        if delta is None or event.index is None:
            raise VendorProtocolError("content_block_delta without a delta or index")
        if delta.type == "text_delta" and delta.text:
            return [ChatDelta(text=delta.text)]
        if delta.type == "input_json_delta" and delta.partial_json:
            index = self._tool_index_by_block.get(event.index)
            if index is None:
                raise VendorProtocolError("input_json_delta for a block that is not a tool_use")
            return [ChatDelta(tool_call=ToolCallDelta(index=index, arguments=delta.partial_json))]
        return []  # thinking, signature and citation deltas are not part of the answer

    def _merge_usage(self, usage: _Usage | None) -> None:
        if usage is None:
            return
        for field, value in usage.model_dump(exclude_none=True).items():
            self._usage[field] = value

    def _final(self) -> ChatDelta:
        finish = _finish_reason(self._stop_reason)
        usage = _usage(_Usage.model_validate(self._usage)) if self._usage else None
        return ChatDelta(finish_reason=finish, usage=usage)


# ---- errors --------------------------------------------------------------------------------

# error.type -> (code, retryable). Authentication, permission and billing failures concern the
# key Switchyard holds, so they are ours to fix (VENDOR_AUTH), never the caller's.
_ERROR_TYPES: dict[str, tuple[ErrorCode, bool]] = {
    "invalid_request_error": (ErrorCode.INVALID_REQUEST, False),
    "authentication_error": (ErrorCode.VENDOR_AUTH, False),
    "permission_error": (ErrorCode.VENDOR_AUTH, False),
    "billing_error": (ErrorCode.VENDOR_AUTH, False),
    "not_found_error": (ErrorCode.VENDOR_ERROR, False),  # our catalogue names a missing model
    "request_too_large": (ErrorCode.PAYLOAD_TOO_LARGE, False),
    "rate_limit_error": (ErrorCode.VENDOR_RATE_LIMITED, True),
    "api_error": (ErrorCode.VENDOR_ERROR, True),
    "timeout_error": (ErrorCode.VENDOR_TIMEOUT, True),
    "overloaded_error": (ErrorCode.VENDOR_OVERLOADED, True),
}
# For bodies without a readable type (a proxy's HTML page, an empty body).
_ERROR_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_CONTEXT_LENGTH = re.compile(
    r"prompt is too long|exceeds? (the )?context|context (window|length|limit)", re.IGNORECASE
)


class _ErrorResponse(_Wire):
    error: _ErrorObject


def classify_anthropic_error(status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
    """Classify a non-2xx Messages answer, by ``error.type`` first, the status second."""
    error: _ErrorObject | None = None
    with contextlib.suppress(VendorProtocolError):  # unreadable bodies fall back to the status
        error = parse_wire(_ErrorResponse, body, what="error body").error
    message = (error.message if error else None) or body_excerpt(body) or f"HTTP {status}"
    info = _classify(error.type if error else None, message, status=status)
    if info.retryable:
        info = info.model_copy(update={"retry_after_s": retry_after_seconds(headers)})
    return info


def _classify(error_type: str | None, message: str, *, status: int | None) -> ErrorInfo:
    if error_type not in _ERROR_TYPES and status is not None:
        error_type = _ERROR_TYPE_BY_STATUS.get(status)
    if error_type in _ERROR_TYPES:
        code, retryable = _ERROR_TYPES[error_type]
    elif status in (408, 409):  # request timeout, lock conflict: worth another try
        code, retryable = ErrorCode.VENDOR_ERROR, True
    elif status is not None and status < 500:
        code, retryable = ErrorCode.VENDOR_ERROR, False
    else:  # an unknown 5xx, or an unknown error type inside a stream
        code, retryable = ErrorCode.VENDOR_ERROR, True
    if code is ErrorCode.INVALID_REQUEST and _CONTEXT_LENGTH.search(message):
        code = ErrorCode.CONTEXT_LENGTH_EXCEEDED
    return ErrorInfo(code=code, message=excerpt(message), retryable=retryable, vendor_status=status)
