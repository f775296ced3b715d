"""Contract chat request -> Chat Completions request body."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from contracts.chat import (
    ChatRequest,
    ImagePart,
    Message,
    ResponseFormat,
    Role,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolChoiceMode,
    ToolResultPart,
    ToolSpec,
)
from services.workers.providers.base import RequestTranslationError
from services.workers.providers.openai_compat.dialect import OpenAIDialect


def request_body(
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
