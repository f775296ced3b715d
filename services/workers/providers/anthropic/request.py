"""Contract chat request -> Anthropic Messages request body."""

from __future__ import annotations

import re
from typing import Any

import orjson

from contracts.chat import (
    ChatRequest,
    ImagePart,
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

ANTHROPIC_VERSION = "2023-06-01"
# Anthropic requires max_tokens. 4096 is the largest value every Claude model accepts (the
# smallest model output cap), so a caller who set nothing never gets a 400 for our default.
DEFAULT_MAX_TOKENS = 4096
# Anthropic's temperature range is [0, 1]; OpenAI's is [0, 2]. Clamping keeps an OpenAI
# client's 1.2 working on Claude, at the nearest value Claude allows.
MAX_TEMPERATURE = 1.0
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def request_body(model: str, chat: ChatRequest, *, stream: bool) -> dict[str, Any]:
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
