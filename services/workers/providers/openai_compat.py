"""The OpenAI Chat Completions protocol, as spoken by OpenAI and the vendors that copy it.

Owns the translation of the contract's chat schema into ``POST {base_url}/chat/completions``,
the reading of its JSON and SSE answers, and the classification of its errors. One adapter
serves OpenAI, DeepSeek, Mistral, xAI, Moonshot, DashScope, Z.ai, MiniMax and Gemini's
OpenAI-compatible endpoint; where they differ on the request side, an ``OpenAIDialect`` says how.
The readers are deliberately lenient about the small ways the copies differ on the way back
(usage in odd places, content as a list, extra finish reasons).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from contracts.chat import (
    ChatDelta,
    ChatRequest,
    ChatResponse,
    FinishReason,
    ImagePart,
    Message,
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
    "GENERIC_DIALECT",
    "MISTRAL_DIALECT",
    "OPENAI_DIALECT",
    "OpenAICompatAdapter",
    "OpenAIDialect",
    "OpenAIStreamDecoder",
    "classify_openai_error",
]


@dataclass(frozen=True, kw_only=True)
class OpenAIDialect:
    """How one vendor's copy of the request side differs from OpenAI's."""

    # OpenAI deprecated ``max_tokens`` for ``max_completion_tokens`` and its reasoning models
    # reject the old name; the other vendors document only ``max_tokens`` (some reject the new
    # one as an unknown field), so the name is per vendor.
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    seed_param: str = "seed"
    # ``stream_options.include_usage`` is how OpenAI-style streams are asked for usage.
    stream_usage_option: bool = True
    # Whether ``user`` and per-message ``name`` are accepted.
    accepts_user: bool = True
    # Mistral rejects tool call ids that are not exactly nine alphanumerics; ids minted by
    # other vendors (``call_…``, ``toolu_…``) must be mapped when a conversation moves there.
    nine_char_tool_call_ids: bool = False


OPENAI_DIALECT = OpenAIDialect(max_tokens_param="max_completion_tokens")
GENERIC_DIALECT = OpenAIDialect()
# Mistral validates strictly (422 on unknown fields): no ``user``/``name``, no
# ``stream_options`` (it reports usage in the last chunk unasked), and ``random_seed``.
MISTRAL_DIALECT = OpenAIDialect(
    seed_param="random_seed",
    stream_usage_option=False,
    accepts_user=False,
    nine_char_tool_call_ids=True,
)


class OpenAICompatAdapter:
    """The ``ProviderAdapter`` for the Chat Completions protocol."""

    def __init__(self, dialect: OpenAIDialect = GENERIC_DIALECT) -> None:
        self.dialect = dialect

    def build_request(
        self, endpoint: ProviderEndpoint, model: str, chat: ChatRequest, *, stream: bool
    ) -> VendorRequest:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if stream:
            headers["accept"] = "text/event-stream"
        if endpoint.api_key:
            headers["authorization"] = f"Bearer {endpoint.api_key}"
        return VendorRequest(
            url=f"{endpoint.base_url.rstrip('/')}/chat/completions",
            headers=headers,
            json=_request_body(self.dialect, model, chat, stream=stream),
        )

    def parse_response(self, body: bytes) -> ChatResponse:
        completion = parse_wire(_Completion, body, what="chat completion")
        if not completion.choices:
            raise VendorProtocolError("chat completion has no choices")
        choice = min(completion.choices, key=lambda c: c.index)
        content: list[TextPart | ToolCallPart] = []
        text = _message_text(choice.message.content) or choice.message.refusal or ""
        if text:
            content.append(TextPart(text=text))
        for position, call in enumerate(choice.message.tool_calls or ()):
            content.append(_tool_call_part(call, position, completion.id))
        if choice.message.function_call is not None and not choice.message.tool_calls:
            content.append(
                _tool_call_part(_ToolCall(function=choice.message.function_call), 0, completion.id)
            )
        has_calls = any(isinstance(part, ToolCallPart) for part in content)
        return ChatResponse(
            content=content,
            finish_reason=_finish_reason(choice.finish_reason, has_tool_calls=has_calls),
            usage=_usage(completion.usage) if completion.usage else Usage(),
            vendor_response_id=completion.id,
            vendor_model=completion.model,
        )

    def stream_decoder(self) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder()

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
        return classify_openai_error(status, headers, body)


# ---- request translation -------------------------------------------------------------------


def _request_body(
    dialect: OpenAIDialect, model: str, chat: ChatRequest, *, stream: bool
) -> dict[str, Any]:
    sampling = chat.sampling
    body: dict[str, Any] = {"model": model, "messages": _messages(dialect, chat)}
    if chat.tools:
        # tool_choice and parallel_tool_calls without tools are a 400 at OpenAI.
        body["tools"] = [_tool(spec) for spec in chat.tools]
        if chat.tool_choice is not None:
            body["tool_choice"] = _tool_choice(chat.tool_choice)
            if chat.tool_choice.parallel is not None:
                body["parallel_tool_calls"] = chat.tool_choice.parallel
    optional: dict[str, Any] = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        dialect.max_tokens_param: sampling.max_output_tokens,
        "stop": list(sampling.stop) or None,
        dialect.seed_param: sampling.seed,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
        "reasoning_effort": sampling.reasoning_effort,
        "response_format": _response_format(chat.response_format),
        "user": chat.user if dialect.accepts_user else None,
    }
    body.update((key, value) for key, value in optional.items() if value is not None)
    if stream:
        body["stream"] = True
        if dialect.stream_usage_option:
            body["stream_options"] = {"include_usage": True}
    return body


def _messages(dialect: OpenAIDialect, chat: ChatRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if chat.system:
        messages.append({"role": "system", "content": chat.system})
    for message in chat.messages:
        messages.extend(_translate_message(dialect, message))
    return messages


def _translate_message(dialect: OpenAIDialect, message: Message) -> list[dict[str, Any]]:
    if message.role is Role.ASSISTANT:
        return [_assistant_message(dialect, message)]
    out: list[dict[str, Any]] = []
    # Tool results become one ``tool`` message each, first: OpenAI requires them to follow the
    # assistant turn that asked for them, before any other message.
    rest: list[TextPart | ImagePart] = []
    tool_images: list[ImagePart] = []
    for part in message.content:
        if isinstance(part, ToolResultPart):
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": _call_id(dialect, part.tool_call_id),
                    "content": "\n".join(p.text for p in part.content if isinstance(p, TextPart)),
                }
            )
            tool_images.extend(p for p in part.content if isinstance(p, ImagePart))
        elif isinstance(part, ToolCallPart):
            raise RequestTranslationError(
                "tool calls may only appear in assistant messages", param="messages"
            )
        else:
            rest.append(part)
    # Tool messages carry text only; images a tool returned are handed to the model in a user
    # message right after the results, so they are not lost.
    if tool_images:
        rest = [TextPart(text="(images returned by the tool calls above)"), *tool_images, *rest]
    if rest:
        user: dict[str, Any] = {"role": "user", "content": _user_content(rest)}
        if message.name and dialect.accepts_user:
            user["name"] = message.name
        out.append(user)
    return out


def _user_content(parts: list[TextPart | ImagePart]) -> str | list[dict[str, Any]]:
    # Plain text goes as a string: several OpenAI-compatible vendors accept only strings.
    if all(isinstance(part, TextPart) for part in parts):
        return "\n".join(part.text for part in parts if isinstance(part, TextPart))
    content: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        else:
            image: dict[str, Any] = {"url": part.url}
            if part.detail is not None:
                image["detail"] = part.detail
            content.append({"type": "image_url", "image_url": image})
    return content


def _assistant_message(dialect: OpenAIDialect, message: Message) -> dict[str, Any]:
    text = message.text()
    calls = [
        {
            "id": _call_id(dialect, part.id),
            "type": "function",
            "function": {"name": part.name, "arguments": part.arguments},
        }
        for part in message.content
        if isinstance(part, ToolCallPart)
    ]
    if any(isinstance(part, ToolResultPart) for part in message.content):
        raise RequestTranslationError(
            "tool results may not appear in assistant messages", param="messages"
        )
    # Images in an assistant turn have no place in this protocol and are dropped.
    out: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        out["tool_calls"] = calls
    if message.name and dialect.accepts_user:
        out["name"] = message.name
    return out


_NINE_ALNUM = re.compile(r"[A-Za-z0-9]{9}")


def _call_id(dialect: OpenAIDialect, call_id: str) -> str:
    if not dialect.nine_char_tool_call_ids or _NINE_ALNUM.fullmatch(call_id):
        return call_id
    # Deterministic, so a call and its result (translated separately) map to the same id.
    digest = base64.b32encode(hashlib.sha256(call_id.encode()).digest()).decode()
    return digest[:9]


def _tool(spec: ToolSpec) -> dict[str, Any]:
    function: dict[str, Any] = {"name": spec.name, "parameters": spec.parameters}
    if spec.description is not None:
        function["description"] = spec.description
    if spec.strict is not None:
        function["strict"] = spec.strict
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode is ToolChoiceMode.TOOL:
        if not choice.name:
            raise RequestTranslationError("tool_choice names no tool", param="tool_choice")
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode.value  # "auto", "none", "required" are spelled the same


def _response_format(fmt: ResponseFormat | None) -> dict[str, Any] | None:
    if fmt is None or fmt.type == "text":
        return None  # text is the default; not sending it keeps strict vendors happy
    if fmt.type == "json_object":
        return {"type": "json_object"}
    schema: dict[str, Any] = {"name": fmt.schema_name or "response"}
    if fmt.json_schema is not None:
        schema["schema"] = fmt.json_schema
    if fmt.strict is not None:
        schema["strict"] = fmt.strict
    return {"type": "json_schema", "json_schema": schema}


# ---- wire shapes of answers (private; lenient: extra fields are ignored) ----------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Function(_Wire):
    name: str | None = None
    # A few copies send parsed objects instead of JSON text.
    arguments: str | dict[str, Any] | None = None


class _ToolCall(_Wire):
    index: int | None = None
    id: str | None = None
    function: _Function | None = None


class _ContentChunk(_Wire):
    type: str
    text: str | None = None


class _Message(_Wire):
    # Mistral's reasoning models answer with a list of typed chunks.
    content: str | list[_ContentChunk] | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCall] | None = None
    function_call: _Function | None = None


class _Choice(_Wire):
    index: int = 0
    message: _Message
    finish_reason: str | None = None


class _PromptDetails(_Wire):
    cached_tokens: int | None = None


class _CompletionDetails(_Wire):
    reasoning_tokens: int | None = None


class _Usage(_Wire):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None
    prompt_cache_hit_tokens: int | None = None  # DeepSeek
    cached_tokens: int | None = None  # Moonshot


class _Completion(_Wire):
    id: str | None = None
    model: str | None = None
    choices: list[_Choice]
    usage: _Usage | None = None


class _Delta(_Wire):
    content: str | list[_ContentChunk] | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _ChunkChoice(_Wire):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None
    usage: _Usage | None = None  # Moonshot reports stream usage inside the choice


class _ErrorBody(_Wire):
    message: Any = None
    type: str | None = None
    code: Any = None
    param: str | None = None


class _Chunk(_Wire):
    id: str | None = None
    model: str | None = None
    choices: list[_ChunkChoice] = []
    usage: _Usage | None = None
    error: _ErrorBody | None = None


# ---- reading answers -----------------------------------------------------------------------


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


def _finish_reason(raw: str | None, *, has_tool_calls: bool) -> FinishReason:
    reason = _FINISH_REASONS.get(raw or "stop", FinishReason.STOP)
    # Some copies (Gemini's among them) say "stop" after calling tools; clients loop on
    # "tool_calls", so the content wins.
    if has_tool_calls and reason is FinishReason.STOP:
        return FinishReason.TOOL_CALLS
    return reason


def _usage(usage: _Usage) -> Usage:
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


def _message_text(content: str | list[_ContentChunk] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    # Only "text" chunks are the answer; "thinking" chunks are the model's scratchpad.
    return "".join(chunk.text or "" for chunk in content if chunk.type == "text")


def _arguments(function: _Function) -> str:
    if isinstance(function.arguments, dict):
        return orjson.dumps(function.arguments).decode()
    return function.arguments or "{}"


def _tool_call_part(call: _ToolCall, position: int, response_id: str | None) -> ToolCallPart:
    if call.function is None or not call.function.name:
        raise VendorProtocolError("tool call without a function name")
    # An id is needed to pair the result later; legacy function_call answers carry none.
    call_id = call.id or f"call_{response_id or 'x'}_{position}"
    return ToolCallPart(id=call_id, name=call.function.name, arguments=_arguments(call.function))


class OpenAIStreamDecoder:
    """Decodes one ``chat.completion.chunk`` stream.

    ``finish_reason`` arrives before usage (OpenAI sends usage in a final chunk with no choices)
    or in the same chunk (DeepSeek, Mistral), so it is held until usage arrives at or after it,
    or until ``[DONE]``, and the two go out together in the last delta.
    """

    def __init__(self) -> None:
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None
        self._usage_after_finish = False
        self._saw_tool_calls = False
        self._final_sent = False
        self._done = False
        # Calls without an index (some copies omit it) are placed by id, in order of arrival.
        self._index_by_id: dict[str, int] = {}
        self._last_index = -1

    @property
    def finished(self) -> bool:
        return self._done

    def feed(self, event: str, data: str) -> list[ChatDelta]:
        data = data.strip()
        if self._done or not data:
            return []
        if data == "[DONE]":
            self._done = True
            return [] if self._final_sent else [self._final()]
        chunk = validate_wire(_Chunk, load_json(data, what="stream chunk"), what="stream chunk")
        if chunk.error is not None or event == "error":
            raise VendorStreamError(_stream_error(chunk.error))
        if self._final_sent:
            return []
        deltas: list[ChatDelta] = []
        for choice in chunk.choices:
            if choice.index != 0:  # we never ask for n > 1
                continue
            if choice.delta is not None:
                deltas.extend(self._content_deltas(choice.delta))
            if choice.finish_reason:
                self._finish = _finish_reason(
                    choice.finish_reason, has_tool_calls=self._saw_tool_calls
                )
            if choice.usage is not None:
                self._take_usage(choice.usage)
        if chunk.usage is not None:
            self._take_usage(chunk.usage)
        if self._finish is not None and self._usage_after_finish:
            deltas.append(self._final())
        return deltas

    def _take_usage(self, usage: _Usage) -> None:
        self._usage = _usage(usage)
        self._usage_after_finish = self._finish is not None

    def _final(self) -> ChatDelta:
        self._final_sent = True
        finish = self._finish or (
            FinishReason.TOOL_CALLS if self._saw_tool_calls else FinishReason.STOP
        )
        return ChatDelta(finish_reason=finish, usage=self._usage)

    def _content_deltas(self, delta: _Delta) -> list[ChatDelta]:
        out: list[ChatDelta] = []
        text = _message_text(delta.content) or delta.refusal or ""
        if text:
            out.append(ChatDelta(text=text))
        for position, call in enumerate(delta.tool_calls or ()):
            self._saw_tool_calls = True
            function = call.function or _Function()
            out.append(
                ChatDelta(
                    tool_call=ToolCallDelta(
                        index=self._call_index(call, position),
                        id=call.id or None,
                        name=function.name or None,
                        arguments=_arguments(function) if function.arguments else "",
                    )
                )
            )
        return out

    def _call_index(self, call: _ToolCall, position: int) -> int:
        if call.index is not None:
            index = call.index
        elif call.id and call.id in self._index_by_id:
            index = self._index_by_id[call.id]
        elif call.id:
            index = max(self._last_index + 1, position)
        else:
            index = max(self._last_index, 0)
        if call.id:
            self._index_by_id.setdefault(call.id, index)
        self._last_index = max(self._last_index, index)
        return index


# ---- errors --------------------------------------------------------------------------------

_CONTEXT_LENGTH = re.compile(
    r"context[_ ]length|context window|maximum context|prompt is too long|too many (input )?tokens",
    re.IGNORECASE,
)


def classify_openai_error(status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
    """Classify a non-2xx answer of an OpenAI-compatible vendor.

    Authentication, permission and billing failures are ``VENDOR_AUTH``: the key is ours, so
    it is our configuration at fault, never the caller's.
    """
    error = _error_body(body)
    message = excerpt(_message_of(error) or body_excerpt(body) or f"HTTP {status}")
    code = str(error.code) if error and error.code is not None else ""

    def info(code_: ErrorCode, retryable: bool, *, param: str | None = None) -> ErrorInfo:
        retry_after = retry_after_seconds(headers) if retryable else None
        return ErrorInfo(
            code=code_,
            message=message,
            retryable=retryable,
            retry_after_s=retry_after,
            vendor_status=status,
            param=param,
        )

    if status in (400, 422):  # Mistral validates with 422
        if code == "context_length_exceeded" or _CONTEXT_LENGTH.search(message):
            return info(ErrorCode.CONTEXT_LENGTH_EXCEEDED, False)
        return info(ErrorCode.INVALID_REQUEST, False, param=error.param if error else None)
    if status in (401, 402, 403):  # 402: DeepSeek's "Insufficient Balance"
        return info(ErrorCode.VENDOR_AUTH, False)
    if status == 404:
        # The vendor does not know the model: our catalogue is wrong, not the caller's request.
        return info(ErrorCode.VENDOR_ERROR, False)
    if status == 413:
        return info(ErrorCode.PAYLOAD_TOO_LARGE, False)
    if status == 429:
        # An exhausted quota will not refill by waiting; the worker should move on.
        quota = code == "insufficient_quota" or (
            error is not None and error.type == "insufficient_quota"
        )
        return info(ErrorCode.VENDOR_RATE_LIMITED, not quota)
    if status in (408, 409):
        return info(ErrorCode.VENDOR_ERROR, True)
    if status in (503, 529):
        return info(ErrorCode.VENDOR_OVERLOADED, True)
    if status >= 500:
        return info(ErrorCode.VENDOR_ERROR, True)
    return info(ErrorCode.VENDOR_ERROR, False)


def _stream_error(error: _ErrorBody | None) -> ErrorInfo:
    message = excerpt(_message_of(error) or "the vendor reported an error mid-stream")
    kind = f"{error.type or ''} {error.code or ''}" if error else ""
    if "rate_limit" in kind:
        return ErrorInfo(code=ErrorCode.VENDOR_RATE_LIMITED, message=message, retryable=True)
    if "invalid_request" in kind:
        code = (
            ErrorCode.CONTEXT_LENGTH_EXCEEDED
            if _CONTEXT_LENGTH.search(message) or "context_length" in kind
            else ErrorCode.INVALID_REQUEST
        )
        return ErrorInfo(code=code, message=message, retryable=False)
    if "overload" in kind:
        return ErrorInfo(code=ErrorCode.VENDOR_OVERLOADED, message=message, retryable=True)
    return ErrorInfo(code=ErrorCode.VENDOR_ERROR, message=message, retryable=True)


def _error_body(body: bytes) -> _ErrorBody | None:
    """The error object from the shapes the copies use: ``{"error": {...}}`` (OpenAI),
    ``[{"error": {...}}]`` (Gemini), ``{"message": ..., "type": ...}`` (Mistral, others)."""
    try:
        value: Any = load_json(body, what="error body")
    except VendorProtocolError:
        return None
    if isinstance(value, list) and value:
        value = value[0]
    if not isinstance(value, dict):
        return None
    inner = value.get("error")
    if isinstance(inner, dict):
        value = inner
    elif isinstance(inner, str):
        value = {"message": inner}
    elif "message" not in value and "detail" in value:
        value = {"message": value["detail"]}
    try:
        return _ErrorBody.model_validate(value)
    except ValueError:
        return None


def _message_of(error: _ErrorBody | None) -> str:
    if error is None or error.message is None:
        return ""
    message = error.message
    if isinstance(message, str):
        return message
    if isinstance(message, dict) and isinstance(message.get("detail"), list):
        message = message["detail"]
    if isinstance(message, list) and all(isinstance(item, dict) for item in message):
        # A validation report (Mistral's 422, pydantic-shaped): location and complaint only,
        # as each item's "input" echoes the offending request, prompt text included.
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', ()))}: {item.get('msg', '')}".strip(": ")
            for item in message
        )
    return orjson.dumps(message).decode()
