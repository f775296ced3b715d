"""The recorded vendor payloads are checked against the official SDKs' response models, so the
adapters are tested against shapes the vendors actually produce, not shapes we imagined."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.types import Message as AnthropicMessage
from anthropic.types import RawMessageStreamEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from tests.unit.workers.providers.provider_testkit import PAYLOADS, read_payload, read_sse

STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)


def _names(pattern: str) -> list[str]:
    return sorted(str(p.relative_to(PAYLOADS)) for p in PAYLOADS.glob(pattern))


@pytest.mark.parametrize("name", _names("openai/*completion*.json"))
def test_openai_completions(name: str) -> None:
    ChatCompletion.model_validate_json(read_payload(name))


@pytest.mark.parametrize("name", _names("openai/*.sse"))
def test_openai_chunks(name: str) -> None:
    events = read_sse(name)
    assert events[-1] == ("", "[DONE]")
    for _, data in events[:-1]:
        ChatCompletionChunk.model_validate_json(data)


@pytest.mark.parametrize("name", _names("anthropic/message_*.json"))
def test_anthropic_messages(name: str) -> None:
    AnthropicMessage.model_validate_json(read_payload(name))


@pytest.mark.parametrize("name", _names("anthropic/stream_*.sse"))
def test_anthropic_stream_events(name: str) -> None:
    for event, data in read_sse(name):
        payload = orjson.loads(data)
        assert payload["type"] == event  # Anthropic names every event after its type
        if event not in ("ping", "error"):  # not part of the SDK's event union
            STREAM_EVENT.validate_python(payload)


def test_there_are_payloads_to_check() -> None:
    assert len(_names("openai/*")) >= 10
    assert len(_names("anthropic/*")) >= 10
