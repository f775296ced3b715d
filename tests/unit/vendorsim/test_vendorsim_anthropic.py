"""Anthropic Messages against the app in-process: shapes (validated with the SDK's own types),
the stream's event sequence, usage with cache reads, tools, count_tokens and errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from anthropic.types import Message, MessageTokensCount, RawMessageStreamEvent
from pydantic import TypeAdapter

from services.vendorsim import MESSAGE_OVERHEAD, PROMPT_OVERHEAD, count_text_tokens
from tests.unit.vendorsim.vendorsim_requests import anthropic_messages, anthropic_tools

PATH = "/v1/messages"
HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "anything"}
_EVENTS: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)


async def create(sim: httpx.AsyncClient, body: dict[str, Any]) -> Message:
    response = await sim.post(PATH, json=body, headers=HEADERS)
    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-simulated"] == "true"
    assert response.headers["request-id"].startswith("req_")
    return Message.model_validate(response.json())


async def stream(
    sim: httpx.AsyncClient, body: dict[str, Any]
) -> tuple[list[str], list[RawMessageStreamEvent]]:
    """The names of all events, and every event but ``ping`` (the SDK's union leaves it out)."""
    response = await sim.post(PATH, json={**body, "stream": True}, headers=HEADERS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    names, events = [], []
    for frame in response.text.split("\n\n"):
        if not frame:
            continue
        name_line, data_line = frame.split("\n")
        name = name_line.removeprefix("event: ")
        names.append(name)
        if name == "ping":
            assert data_line == 'data: {"type":"ping"}'
            continue
        event = _EVENTS.validate_json(data_line.removeprefix("data: "))
        assert event.type == name
        events.append(event)
    return names, events


async def test_a_message_is_deterministic_with_usage(sim: httpx.AsyncClient) -> None:
    first = await create(sim, anthropic_messages("Summarise Hamlet."))
    second = await create(sim, anthropic_messages("Summarise Hamlet."))

    assert first.content == second.content
    assert first.id != second.id
    assert first.id.startswith("msg_")
    assert first.model == "claude-sim"
    assert first.stop_reason == "end_turn"
    (block,) = first.content
    assert block.type == "text"
    assert count_text_tokens(block.text) == 16
    assert first.usage.input_tokens == PROMPT_OVERHEAD + MESSAGE_OVERHEAD + 3
    assert first.usage.output_tokens == 16
    assert first.usage.cache_read_input_tokens == 0


async def test_the_same_conversation_gets_the_same_reply_as_openai(
    sim: httpx.AsyncClient,
) -> None:
    message = await create(sim, anthropic_messages("Summarise Hamlet."))
    response = await sim.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "Summarise Hamlet."}]},
    )

    assert message.content[0].type == "text"
    assert message.content[0].text == response.json()["choices"][0]["message"]["content"]


async def test_max_tokens_cuts_the_reply(sim: httpx.AsyncClient) -> None:
    message = await create(sim, anthropic_messages("Go [sim:tokens=30]", max_tokens=4))

    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 4


async def test_cache_reads_are_excluded_from_input_tokens(sim: httpx.AsyncClient) -> None:
    plain = await create(sim, anthropic_messages("Long context [sim:cache=10]"))
    prompt = PROMPT_OVERHEAD + MESSAGE_OVERHEAD + count_text_tokens("Long context [sim:cache=10]")

    assert plain.usage.cache_read_input_tokens == 10
    assert plain.usage.input_tokens == prompt - 10
    assert plain.usage.cache_creation_input_tokens == 0


async def test_the_stream_follows_the_real_event_sequence(sim: httpx.AsyncClient) -> None:
    body = anthropic_messages("Summarise Hamlet. [sim:cache=3]")
    whole = await create(sim, body)
    names, events = await stream(sim, body)

    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 16,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta = events[0], events[-2]
    assert start.type == "message_start"
    assert start.message.usage.input_tokens == whole.usage.input_tokens
    assert start.message.usage.cache_read_input_tokens == 3
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == 16
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert whole.content[0].type == "text"
    assert text == whole.content[0].text


@pytest.mark.parametrize(
    ("prompt", "tool_choice", "name"),
    [
        ("Weather? [sim:tool]", None, "get_weather"),
        ("Time? [sim:tool=get_time]", {"type": "auto"}, "get_time"),
        ("Weather?", {"type": "any"}, "get_weather"),
        ("Time?", {"type": "tool", "name": "get_time"}, "get_time"),
    ],
)
async def test_tool_use(
    sim: httpx.AsyncClient, prompt: str, tool_choice: dict[str, Any] | None, name: str
) -> None:
    extra: dict[str, Any] = {"tools": anthropic_tools()}
    if tool_choice is not None:
        extra["tool_choice"] = tool_choice
    message = await create(sim, anthropic_messages(prompt, **extra))

    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_")
    assert block.name == name
    assert isinstance(block.input, dict)
    if name == "get_weather":
        assert block.input["unit"] in {"celsius", "fahrenheit"}


async def test_no_tool_use_with_tool_choice_none(sim: httpx.AsyncClient) -> None:
    body = anthropic_messages("Weather? [sim:tool]", tools=anthropic_tools())
    message = await create(sim, body | {"tool_choice": {"type": "none"}})

    assert message.stop_reason == "end_turn"


async def test_a_tool_round_ends_with_an_answer(sim: httpx.AsyncClient) -> None:
    body = anthropic_messages("Weather? [sim:tool]", tools=anthropic_tools())
    call = (await create(sim, body)).content[0]
    assert call.type == "tool_use"
    body["messages"] += [
        {"role": "assistant", "content": [call.model_dump()]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny"}],
        },
    ]
    answer = await create(sim, body)

    assert answer.stop_reason == "end_turn"


async def test_streamed_tool_input_arrives_as_json_fragments(sim: httpx.AsyncClient) -> None:
    body = anthropic_messages("Weather? [sim:tool]", tools=anthropic_tools())
    whole = await create(sim, body)
    _, events = await stream(sim, body)

    start = events[1]
    assert start.type == "content_block_start"
    assert start.content_block.type == "tool_use"
    assert start.content_block.name == "get_weather"
    fragments = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert len(fragments) > 2
    assert whole.content[0].type == "tool_use"
    assert json.loads("".join(fragments)) == whole.content[0].input
    assert events[-2].type == "message_delta"
    assert events[-2].delta.stop_reason == "tool_use"


async def test_images_and_system_are_counted(sim: httpx.AsyncClient) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x"}}
    content = [{"type": "text", "text": "What?"}, image]
    body = anthropic_messages("x") | {
        "system": "Be brief.",
        "messages": [{"role": "user", "content": content}],
    }
    message = await create(sim, body)

    assert message.usage.input_tokens == PROMPT_OVERHEAD + 2 * MESSAGE_OVERHEAD + 3 + 2 + 85


async def test_count_tokens_matches_the_usage_of_a_call(sim: httpx.AsyncClient) -> None:
    body = anthropic_messages("Count me, please.", tools=anthropic_tools())
    message = await create(sim, body)
    response = await sim.post(
        "/v1/messages/count_tokens", json={k: v for k, v in body.items() if k != "max_tokens"}
    )

    assert response.status_code == 200
    assert MessageTokensCount.model_validate(response.json()).input_tokens == (
        message.usage.input_tokens
    )


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}',
        b'{"model": "m", "max_tokens": 5}',
        b'{"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}',
        b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]}',
    ],
)
async def test_a_bad_body_gets_a_400_in_anthropic_shape(
    sim: httpx.AsyncClient, body: bytes
) -> None:
    response = await sim.post(PATH, content=body, headers=HEADERS)

    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("directive", "status", "kind"),
    [
        ("[sim:fail=429]", 429, "rate_limit_error"),
        ("[sim:fail=500]", 500, "api_error"),
        ("[sim:fail=529]", 529, "overloaded_error"),
        ("[sim:fail=403]", 403, "permission_error"),
    ],
)
async def test_errors_in_anthropic_shape(
    sim: httpx.AsyncClient, directive: str, status: int, kind: str
) -> None:
    response = await sim.post(PATH, json=anthropic_messages(f"Hi {directive}"), headers=HEADERS)

    assert response.status_code == status
    assert response.headers["x-switchyard-simulated"] == "true"
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == kind
    assert ("retry-after" in response.headers) == (status == 429)


async def test_models_list_in_anthropic_shape(sim: httpx.AsyncClient) -> None:
    response = await sim.get("/v1/models", headers=HEADERS)

    page = response.json()
    assert page["has_more"] is False
    assert all(model["type"] == "model" for model in page["data"])
    assert page["first_id"] == page["data"][0]["id"]
