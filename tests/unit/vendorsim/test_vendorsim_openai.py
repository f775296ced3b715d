"""OpenAI Chat Completions against the app in-process: shapes (validated with the SDK's own
types), determinism, usage, length limits, tools, JSON output and errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from services.vendorsim import MESSAGE_OVERHEAD, PROMPT_OVERHEAD, count_text_tokens
from tests.unit.vendorsim.vendorsim_requests import openai_chat, openai_tools

PATH = "/v1/chat/completions"


async def complete(sim: httpx.AsyncClient, body: dict[str, Any]) -> ChatCompletion:
    response = await sim.post(PATH, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-simulated"] == "true"
    return ChatCompletion.model_validate(response.json())


async def stream(sim: httpx.AsyncClient, body: dict[str, Any]) -> list[ChatCompletionChunk]:
    response = await sim.post(PATH, json={**body, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-switchyard-simulated"] == "true"
    events = [line for line in response.text.split("\n\n") if line]
    assert events[-1] == "data: [DONE]"
    return [ChatCompletionChunk.model_validate_json(e.removeprefix("data: ")) for e in events[:-1]]


async def test_a_completion_is_deterministic_and_labelled(sim: httpx.AsyncClient) -> None:
    first = await complete(sim, openai_chat("Summarise Hamlet."))
    second = await complete(sim, openai_chat("Summarise Hamlet."))
    other = await complete(sim, openai_chat("Summarise Macbeth."))

    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content
    assert first.id != second.id
    assert first.model == "gpt-sim"
    assert first.system_fingerprint == "switchyard-vendorsim"
    assert first.choices[0].finish_reason == "stop"
    assert first.usage == second.usage


async def test_usage_counts_prompt_and_reply(sim: httpx.AsyncClient) -> None:
    completion = await complete(sim, openai_chat("Summarise Hamlet."))

    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == PROMPT_OVERHEAD + MESSAGE_OVERHEAD + 3
    assert usage.completion_tokens == 16
    assert count_text_tokens(completion.choices[0].message.content or "") == 16
    assert usage.total_tokens == usage.prompt_tokens + 16
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_a_token_limit_cuts_the_reply(sim: httpx.AsyncClient, field: str) -> None:
    completion = await complete(sim, openai_chat("Long story [sim:tokens=50]", **{field: 7}))

    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 7
    assert len((completion.choices[0].message.content or "").split()) == 7


async def test_directives_set_length_cache_and_reasoning(sim: httpx.AsyncClient) -> None:
    completion = await complete(
        sim, openai_chat("Go [sim:tokens=40][sim:cache=5][sim:reasoning=9]")
    )

    usage = completion.usage
    assert usage is not None
    assert len((completion.choices[0].message.content or "").split()) == 40
    assert usage.completion_tokens == 40 + 9
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 5
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 9


async def test_cached_tokens_never_exceed_the_prompt(sim: httpx.AsyncClient) -> None:
    completion = await complete(sim, openai_chat("Short [sim:cache=100000]"))

    assert completion.usage is not None
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == completion.usage.prompt_tokens


async def test_a_stream_carries_the_same_reply_and_a_usage_chunk(sim: httpx.AsyncClient) -> None:
    body = openai_chat("Summarise Hamlet.", stream_options={"include_usage": True})
    whole = await complete(sim, openai_chat("Summarise Hamlet."))
    chunks = await stream(sim, body)

    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 16
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == "stop"
    assert all(reason is None for reason in finish[:-1])
    *content, last = chunks
    assert last.choices == []
    assert last.usage == whole.usage
    assert all(chunk.usage is None for chunk in content)
    assert len({chunk.id for chunk in chunks}) == 1


async def test_a_stream_without_include_usage_has_no_usage(sim: httpx.AsyncClient) -> None:
    chunks = await stream(sim, openai_chat("Hi", max_tokens=3))

    assert all(chunk.choices for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(chunk.usage is None for chunk in chunks)


@pytest.mark.parametrize(
    ("prompt", "tool_choice", "name"),
    [
        ("Weather? [sim:tool]", None, "get_weather"),
        ("Time? [sim:tool=get_time]", "auto", "get_time"),
        ("Weather?", "required", "get_weather"),
        ("Time?", {"type": "function", "function": {"name": "get_time"}}, "get_time"),
    ],
)
async def test_tool_calls(
    sim: httpx.AsyncClient, prompt: str, tool_choice: object, name: str
) -> None:
    extra: dict[str, Any] = {"tools": openai_tools()}
    if tool_choice is not None:
        extra["tool_choice"] = tool_choice
    completion = await complete(sim, openai_chat(prompt, **extra))

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == name
    arguments = json.loads(call.function.arguments)
    assert completion.usage is not None
    assert completion.usage.completion_tokens == count_text_tokens(name) + count_text_tokens(
        call.function.arguments
    )
    if name == "get_weather":
        assert set(arguments) == {"city", "unit", "days", "hourly", "stations", "where"}
        assert isinstance(arguments["city"], str)
        assert arguments["unit"] in {"celsius", "fahrenheit"}
        assert isinstance(arguments["days"], int)
        assert isinstance(arguments["hourly"], bool)
        assert isinstance(arguments["stations"][0], str)
        assert isinstance(arguments["where"]["lat"], float)
    else:
        assert arguments == {}


@pytest.mark.parametrize(
    ("prompt", "extra"),
    [
        ("Weather?", {"tools": openai_tools()}),
        ("Weather? [sim:tool]", {"tools": openai_tools(), "tool_choice": "none"}),
        ("Weather? [sim:tool]", {}),
    ],
)
async def test_no_tool_call_unless_asked_and_possible(
    sim: httpx.AsyncClient, prompt: str, extra: dict[str, Any]
) -> None:
    completion = await complete(sim, openai_chat(prompt, **extra))

    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.tool_calls is None


async def test_a_tool_round_ends_with_an_answer(sim: httpx.AsyncClient) -> None:
    body = openai_chat("Weather? [sim:tool]", tools=openai_tools())
    call = (await complete(sim, body)).choices[0].message.tool_calls
    assert call is not None
    body["messages"] += [
        {"role": "assistant", "content": None, "tool_calls": [call[0].model_dump()]},
        {"role": "tool", "tool_call_id": call[0].id, "content": "Sunny, 21 degrees"},
    ]
    answer = await complete(sim, body)

    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content


async def test_a_streamed_tool_call_arrives_in_fragments(sim: httpx.AsyncClient) -> None:
    body = openai_chat("Weather? [sim:tool]", tools=openai_tools())
    whole = await complete(sim, body)
    chunks = await stream(sim, body)

    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices[0].delta.tool_calls]
    first = calls[0][0]
    assert first.id is not None
    assert first.function is not None
    assert first.function.name == "get_weather"
    fragments = [call[0].function.arguments for call in calls[1:] if call[0].function]
    assert len(fragments) > 2
    expected = whole.choices[0].message.tool_calls
    assert expected is not None
    assert expected[0].type == "function"
    assert "".join(f or "" for f in fragments) == expected[0].function.arguments
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_json_schema_output_is_valid_json(sim: httpx.AsyncClient) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    completion = await complete(sim, openai_chat("Who?", response_format=response_format))

    document = json.loads(completion.choices[0].message.content or "")
    assert isinstance(document["name"], str)
    assert isinstance(document["age"], int)


async def test_json_object_output_is_valid_json(sim: httpx.AsyncClient) -> None:
    completion = await complete(sim, openai_chat("Who?", response_format={"type": "json_object"}))

    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


async def test_images_count_a_fixed_number_of_tokens(sim: httpx.AsyncClient) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    text = {"type": "text", "text": "What is this?"}
    plain = await complete(
        sim, openai_chat("x") | {"messages": [{"role": "user", "content": [text]}]}
    )
    with_images = await complete(
        sim, openai_chat("x") | {"messages": [{"role": "user", "content": [text, image, image]}]}
    )

    assert plain.usage is not None
    assert with_images.usage is not None
    assert with_images.usage.prompt_tokens == plain.usage.prompt_tokens + 2 * 85


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"messages": [{"role": "user", "content": "hi"}]}',
        b'{"model": "m", "messages": []}',
        b'{"model": "m", "messages": ["hi"]}',
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}',
    ],
)
async def test_a_bad_body_gets_a_400_in_openai_shape(sim: httpx.AsyncClient, body: bytes) -> None:
    response = await sim.post(PATH, content=body)

    assert response.status_code == 400
    assert response.headers["x-switchyard-simulated"] == "true"
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"]


@pytest.mark.parametrize(
    ("directive", "status", "kind", "code"),
    [
        ("[sim:fail=429]", 429, "rate_limit_error", "rate_limit_exceeded"),
        ("[sim:fail=500]", 500, "server_error", None),
        ("[sim:fail=529]", 503, "server_error", None),
        ("[sim:fail=401]", 401, "invalid_request_error", "invalid_api_key"),
    ],
)
async def test_errors_in_openai_shape(
    sim: httpx.AsyncClient, directive: str, status: int, kind: str, code: str | None
) -> None:
    response = await sim.post(PATH, json=openai_chat(f"Hi {directive}"))

    assert response.status_code == status
    assert response.headers["x-switchyard-simulated"] == "true"
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (kind, code, None)
    assert "simulated" in error["message"].lower()
    assert ("retry-after" in response.headers) == (status == 429)


async def test_models_list_in_openai_shape(sim: httpx.AsyncClient) -> None:
    response = await sim.get("/v1/models")

    assert response.status_code == 200
    assert response.json()["object"] == "list"
    models = [Model.model_validate(m) for m in response.json()["data"]]
    assert models
