"""OpenAI Chat Completions on the wire: ``POST /v1/chat/completions``, plain and streamed.

Shapes follow OpenAI's API reference: a ``chat.completion`` object, ``chat.completion.chunk``
SSE events ending with ``data: [DONE]``, a usage chunk with empty ``choices`` when
``stream_options.include_usage`` is set, and errors as ``{"error": {message, type, param,
code}}``. Every reply carries ``system_fingerprint: "switchyard-vendorsim"``.
"""

from __future__ import annotations

import time
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

FINGERPRINT = "switchyard-vendorsim"
_FINISH = {Finish.STOP: "stop", Finish.LENGTH: "length", Finish.TOOL_CALL: "tool_calls"}
_ROLES = {"developer": "system", "function": "tool"}
# (type, code) per status; OpenAI has no 529, and answers overload with a 503.
_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}
_DONE = b"data: [DONE]\n\n"


class OpenAIChat:
    malformed_frame = b'data: {"id": "chatcmpl-broken", "choices": [{"delta": \n\n'
    request_id_header = b"x-request-id"

    def parse(self, body: bytes) -> Conversation:
        data = _object(body)
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("you must provide a model parameter")
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a non-empty array")
        tool_choice, tool_name = _tool_choice(data.get("tool_choice"))
        output_format, schema = _response_format(data.get("response_format"))
        options = data.get("stream_options")
        return Conversation(
            model=model,
            turns=tuple(_turn(message) for message in messages),
            tools=_tools(data.get("tools")),
            tool_choice=tool_choice,
            tool_choice_name=tool_name,
            max_tokens=_max_tokens(data),
            output_format=output_format,
            output_schema=schema,
            stream=data.get("stream") is True,
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        )

    def render(self, conversation: Conversation, reply: Reply, serial: str) -> bytes:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if reply.tool_call else reply.text,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_call:
            call = reply.tool_call
            message["tool_calls"] = [
                {
                    "id": f"call_{call.call_id}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            ]
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": _FINISH[reply.finish],
        }
        return orjson.dumps(
            {
                "id": f"chatcmpl-{serial}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": conversation.model,
                "choices": [choice],
                "usage": _usage(reply.usage),
                "service_tier": "default",
                "system_fingerprint": FINGERPRINT,
            }
        )

    def stream(self, conversation: Conversation, reply: Reply, serial: str) -> StreamFrames:
        envelope: dict[str, Any] = {
            "id": f"chatcmpl-{serial}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": conversation.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [],
        }
        if conversation.include_usage:
            # As OpenAI does: every chunk says usage is null until the last one carries it.
            envelope["usage"] = None

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return b"data: " + orjson.dumps({**envelope, "choices": [choice]}) + b"\n\n"

        # Token frames are stamped from one template: the fragment is the only part that varies,
        # and a stream of thousands of tokens should not pay for a dict and a dump per token.
        call = reply.tool_call
        if call:
            head = chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": f"call_{call.call_id}",
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ],
                }
            )
            before, after = chunk(
                {"tool_calls": [{"index": 0, "function": {"arguments": _HOLE}}]}
            ).split(_HOLE_JSON)
            pieces = call.fragments
        else:
            head = chunk({"role": "assistant", "content": "", "refusal": None})
            before, after = chunk({"content": _HOLE}).split(_HOLE_JSON)
            pieces = reply.fragments
        tokens = tuple(before + orjson.dumps(piece) + after for piece in pieces)
        tail = chunk({}, _FINISH[reply.finish])
        if conversation.include_usage:
            tail += b"data: " + orjson.dumps({**envelope, "usage": _usage(reply.usage)}) + b"\n\n"
        return StreamFrames(head=head, tokens=tokens, tail=tail + _DONE)

    def error(self, status: int, message: str) -> ErrorAnswer:
        if status == 529:
            status = 503
        kind, code = _ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return ErrorAnswer(status, orjson.dumps(body))


_HOLE = "\x00fragment\x00"
_HOLE_JSON = orjson.dumps(_HOLE)


def models_page(models: list[str]) -> bytes:
    """``GET /v1/models`` in OpenAI's list shape."""
    data = [
        {"id": model, "object": "model", "created": 0, "owned_by": FINGERPRINT} for model in models
    ]
    return orjson.dumps({"object": "list", "data": data})


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("We could not parse the JSON body of your request.") from None
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    return data


def _turn(message: object) -> Turn:
    if not isinstance(message, dict):
        raise BadRequest("each message must be an object")
    role = message.get("role")
    if not isinstance(role, str):
        raise BadRequest("each message needs a 'role'")
    texts: list[str] = []
    images = 0
    content = message.get("content")
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                raise BadRequest("each content part must be an object")
            match part.get("type"):
                case "text":
                    texts.append(str(part.get("text", "")))
                case "refusal":
                    texts.append(str(part.get("refusal", "")))
                case "image_url":
                    images += 1
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                texts.append(f"{function.get('name', '')} {function.get('arguments', '')}")
    return Turn(role=_ROLES.get(role, role), text="\n".join(texts), images=images)


def _tools(value: object) -> tuple[ToolSpec, ...]:
    if not isinstance(value, list):
        return ()
    tools = []
    for tool in value:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRequest("each tool needs a function with a name")
        parameters = function.get("parameters")
        tools.append(
            ToolSpec(
                name=function["name"],
                description=str(function.get("description") or ""),
                parameters=parameters if isinstance(parameters, dict) else {},
            )
        )
    return tuple(tools)


def _tool_choice(value: object) -> tuple[ToolChoiceMode, str | None]:
    if value == "none":
        return ToolChoiceMode.NONE, None
    if value == "required":
        return ToolChoiceMode.REQUIRED, None
    if isinstance(value, dict):
        function = value.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return ToolChoiceMode.NAMED, function["name"]
    return ToolChoiceMode.AUTO, None


def _response_format(value: object) -> tuple[OutputFormat, dict[str, Any] | None]:
    if not isinstance(value, dict):
        return OutputFormat.TEXT, None
    match value.get("type"):
        case "json_object":
            return OutputFormat.JSON_OBJECT, None
        case "json_schema":
            spec = value.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            return OutputFormat.JSON_SCHEMA, schema if isinstance(schema, dict) else None
    return OutputFormat.TEXT, None


def _max_tokens(data: dict[str, Any]) -> int | None:
    value = data.get("max_completion_tokens")
    if value is None:
        value = data.get("max_tokens")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest("max_tokens must be a positive integer")
    return value
