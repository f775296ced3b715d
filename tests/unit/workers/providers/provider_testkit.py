"""Shared test kit for provider adapters: recorded vendor payloads, an SSE reader that mirrors
what the worker feeds a decoder, and a structural check of request bodies against the official
SDKs' parameter types (so a translated request has the shape the vendor documents)."""

from __future__ import annotations

import collections.abc
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from typing_extensions import is_typeddict

from contracts.chat import (
    ChatDelta,
    ChatRequest,
    ImagePart,
    Message,
    Role,
    Sampling,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolChoiceMode,
    ToolResultPart,
    ToolSpec,
)
from services.workers.providers.base import StreamDecoder

PAYLOADS = Path(__file__).parent / "payloads"

SseEvent = tuple[str, str]


def read_payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def parse_sse(text: str) -> list[SseEvent]:
    """(event, data) pairs as httpx-sse yields them: unnamed events have event ""."""
    events: list[SseEvent] = []
    for block in text.split("\n\n"):
        name, data = "", []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].removeprefix(" "))
        if data:
            events.append((name, "\n".join(data)))
    return events


def decode_stream(decoder: StreamDecoder, events: list[SseEvent]) -> list[ChatDelta]:
    deltas: list[ChatDelta] = []
    for name, data in events:
        deltas.extend(decoder.feed(name, data))
    return deltas


def read_sse(name: str) -> list[SseEvent]:
    return parse_sse(read_payload(name).decode())


# ---- structural check against the SDKs' TypedDict parameter types ---------------------------

_SEQUENCES = (list, collections.abc.Iterable, collections.abc.Sequence)


def shape_problems(value: object, tp: Any, path: str = "$") -> list[str]:
    """Where ``value`` departs from the TypedDict-based type ``tp``: unknown keys, missing
    required keys, wrong literals or scalar types. Empty when it conforms."""
    if tp is Any or tp is object:
        return []
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        attempts = [shape_problems(value, alt, path) for alt in get_args(tp)]
        if any(not problems for problems in attempts):
            return []
        return min(attempts, key=len)
    if origin is Literal:
        return [] if value in get_args(tp) else [f"{path}: {value!r} not in {get_args(tp)}"]
    if is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{path}: expected an object for {tp.__name__}"]
        hints = get_type_hints(tp)
        problems = [f"{path}.{key}: unknown to {tp.__name__}" for key in value if key not in hints]
        problems += [f"{path}.{key}: missing" for key in tp.__required_keys__ if key not in value]
        for key, item in value.items():
            if key in hints:
                problems += shape_problems(item, hints[key], f"{path}.{key}")
        return problems
    if origin in _SEQUENCES:
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        (item_type,) = get_args(tp) or (Any,)
        return [
            p
            for i, item in enumerate(value)
            for p in shape_problems(item, item_type, f"{path}[{i}]")
        ]
    if origin in (dict, collections.abc.Mapping):
        return [] if isinstance(value, dict) else [f"{path}: expected a mapping"]
    if tp is type(None):
        return [] if value is None else [f"{path}: expected null"]
    if tp is bool:
        return [] if isinstance(value, bool) else [f"{path}: expected a bool"]
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected a number"]
    if tp in (str, int):
        ok = isinstance(value, tp) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected {tp.__name__}"]
    return [f"{path}: {tp!r} is not checked by this helper"]


# ---- a realistic conversation, shared by the adapters' request tests ------------------------

PNG_BASE64 = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
    "hQGAhKmMIQAAAABJRU5ErkJggg=="
)
PNG_DATA_URL = f"data:image/png;base64,{PNG_BASE64}"
WEATHER_TOOL = ToolSpec(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location"],
        "additionalProperties": False,
    },
    strict=True,
)


def weather_conversation(**overrides: Any) -> ChatRequest:
    """System prompt, a user turn with an image, an assistant turn calling two tools, the two
    results (as OpenAI clients send them: one tool message each), and a follow-up question."""
    fields: dict[str, Any] = {
        "system": "You are a concise weather assistant.",
        "messages": [
            Message(
                role=Role.USER,
                content=[
                    TextPart(text="What's the weather in both cities on this postcard?"),
                    ImagePart(url=PNG_DATA_URL, detail="high"),
                ],
            ),
            Message(
                role=Role.ASSISTANT,
                content=[
                    TextPart(text="Let me check."),
                    ToolCallPart(
                        id="call_Xk2M8vR4cN0pQ7sT1uW9yZ3b",
                        name="get_weather",
                        arguments='{"location":"Paris, France"}',
                    ),
                    ToolCallPart(
                        id="call_Lm5N6oP7qR8sT9uV0wX1yZ2a",
                        name="get_weather",
                        arguments='{"location":"Tokyo, Japan"}',
                    ),
                ],
            ),
            Message(
                role=Role.TOOL,
                content=[
                    ToolResultPart(
                        tool_call_id="call_Xk2M8vR4cN0pQ7sT1uW9yZ3b",
                        content=[TextPart(text='{"temp_c": 18, "sky": "overcast"}')],
                    )
                ],
            ),
            Message(
                role=Role.TOOL,
                content=[
                    ToolResultPart(
                        tool_call_id="call_Lm5N6oP7qR8sT9uV0wX1yZ2a",
                        content=[TextPart(text="upstream weather service timed out")],
                        is_error=True,
                    )
                ],
            ),
            Message(role=Role.USER, content=[TextPart(text="And which is warmer?")]),
        ],
        "tools": [WEATHER_TOOL],
        "tool_choice": ToolChoice(mode=ToolChoiceMode.AUTO, parallel=True),
        "sampling": Sampling(temperature=0.3, max_output_tokens=512),
    }
    fields.update(overrides)
    return ChatRequest(**fields)
