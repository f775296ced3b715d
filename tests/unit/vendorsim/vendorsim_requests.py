"""Request bodies the vendorsim tests send, one builder per protocol."""

from __future__ import annotations

from typing import Any

WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"},
        "hourly": {"type": "boolean"},
        "stations": {"type": "array", "items": {"type": "string"}},
        "where": {
            "type": "object",
            "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
        },
    },
    "required": ["city"],
}


def openai_chat(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-sim", "messages": [{"role": "user", "content": prompt}], **extra}


def openai_tools() -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather forecast",
                "parameters": WEATHER_SCHEMA,
            },
        },
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
    ]


def anthropic_messages(prompt: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sim",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": prompt}],
        **extra,
    }


def anthropic_tools() -> list[dict[str, Any]]:
    return [
        {"name": "get_weather", "description": "Weather forecast", "input_schema": WEATHER_SCHEMA},
        {"name": "get_time", "input_schema": {"type": "object"}},
    ]
