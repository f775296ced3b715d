"""The official openai and anthropic SDKs against a real simulator server (uvicorn on a free
127.0.0.1 port): plain calls, streams, tools, error classes, and the mid-stream faults that only
a real connection can show."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from services.vendorsim import count_text_tokens
from services.vendorsim.server import RunningSim
from tests.unit.vendorsim.vendorsim_requests import (
    WEATHER_SCHEMA,
    anthropic_tools,
    openai_chat,
    openai_tools,
)


@pytest.fixture
def openai_client(live_sim: RunningSim) -> Iterator[openai.OpenAI]:
    # Retries belong to the gateway's worker, never to a client library: errors must surface.
    with openai.OpenAI(
        base_url=f"{live_sim.base_url}/v1", api_key="sk-anything", max_retries=0
    ) as client:
        yield client


@pytest.fixture
def anthropic_client(live_sim: RunningSim) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=live_sim.base_url, api_key="anything", max_retries=0
    ) as client:
        yield client


def test_openai_sdk_plain_and_streamed_agree(openai_client: openai.OpenAI) -> None:
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Summarise Hamlet."},
    ]
    whole = openai_client.chat.completions.create(model="gpt-sim-mini", messages=messages)
    chunks = list(
        openai_client.chat.completions.create(
            model="gpt-sim-mini",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert whole.model == "gpt-sim-mini"
    assert whole.system_fingerprint == "switchyard-vendorsim"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage == whole.usage
    assert whole.usage is not None
    assert whole.usage.completion_tokens == 16


def test_openai_sdk_stream_helper_assembles_a_tool_call(openai_client: openai.OpenAI) -> None:
    with openai_client.chat.completions.stream(
        model="gpt-sim",
        messages=[{"role": "user", "content": "Weather in Oslo? [sim:tool]"}],
        tools=openai_tools(),  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert set(json.loads(call.function.arguments)) == set(WEATHER_SCHEMA["properties"])


@pytest.mark.parametrize(
    ("directive", "error"),
    [
        ("[sim:fail=429]", openai.RateLimitError),
        ("[sim:fail=500]", openai.InternalServerError),
        ("[sim:fail=400]", openai.BadRequestError),
    ],
)
def test_openai_sdk_raises_its_own_errors(
    openai_client: openai.OpenAI, directive: str, error: type[openai.APIStatusError]
) -> None:
    with pytest.raises(error) as raised:
        openai_client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"Hi {directive}"}]
        )

    assert raised.value.response.headers["x-switchyard-simulated"] == "true"
    assert raised.value.type is not None


def test_openai_sdk_times_out_on_a_hang(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.APITimeoutError):
        openai_client.with_options(timeout=0.2).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Hi [sim:fail=timeout]"}]
        )


def test_anthropic_sdk_plain_and_streamed_agree(anthropic_client: anthropic.Anthropic) -> None:
    whole = anthropic_client.messages.create(
        model="claude-sim-large",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "Summarise Hamlet. [sim:cache=4]"}],
    )
    with anthropic_client.messages.stream(
        model="claude-sim-large",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "Summarise Hamlet. [sim:cache=4]"}],
    ) as stream:
        streamed_text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert whole.content[0].type == "text"
    assert streamed_text == whole.content[0].text
    assert final.usage.output_tokens == whole.usage.output_tokens == 16
    assert final.usage.input_tokens == whole.usage.input_tokens
    assert final.usage.cache_read_input_tokens == 4
    assert final.stop_reason == "end_turn"


def test_anthropic_sdk_stream_assembles_tool_input(anthropic_client: anthropic.Anthropic) -> None:
    with anthropic_client.messages.stream(
        model="claude-sim-small",
        max_tokens=500,
        tools=anthropic_tools(),  # type: ignore[arg-type]
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    ) as stream:
        final = stream.get_final_message()

    assert final.stop_reason == "tool_use"
    block = final.content[0]
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert isinstance(block.input, dict)
    assert set(block.input) == set(WEATHER_SCHEMA["properties"])


def test_anthropic_sdk_count_tokens(anthropic_client: anthropic.Anthropic) -> None:
    counted = anthropic_client.messages.count_tokens(
        model="claude-sim-small", messages=[{"role": "user", "content": "How many?"}]
    )

    assert counted.input_tokens == 3 + 4 + count_text_tokens("How many?")


@pytest.mark.parametrize(
    ("directive", "error", "kind"),
    [
        ("[sim:fail=429]", anthropic.RateLimitError, "rate_limit_error"),
        ("[sim:fail=529]", anthropic.APIStatusError, "overloaded_error"),
        ("[sim:fail=500]", anthropic.InternalServerError, "api_error"),
    ],
)
def test_anthropic_sdk_raises_its_own_errors(
    anthropic_client: anthropic.Anthropic,
    directive: str,
    error: type[anthropic.APIStatusError],
    kind: str,
) -> None:
    with pytest.raises(error) as raised:
        anthropic_client.messages.create(
            model="claude-sim-small",
            max_tokens=10,
            messages=[{"role": "user", "content": f"Hi {directive}"}],
        )

    body = raised.value.body
    assert isinstance(body, dict)
    assert body["error"]["type"] == kind


def test_anthropic_sdk_fails_on_a_malformed_event(anthropic_client: anthropic.Anthropic) -> None:
    def read_stream() -> str:
        with anthropic_client.messages.stream(
            model="claude-sim-small",
            max_tokens=100,
            messages=[{"role": "user", "content": "Hi [sim:malformed]"}],
        ) as stream:
            return "".join(stream.text_stream)

    with pytest.raises(json.JSONDecodeError):
        read_stream()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", openai_chat("Hi [sim:disconnect]", stream=True)),
        ("/v1/chat/completions", openai_chat("Hi [sim:disconnect][sim:itl=1]", stream=True)),
        ("/v1/chat/completions", openai_chat("Hi [sim:disconnect]")),
        (
            "/v1/messages",
            {
                "model": "c",
                "max_tokens": 50,
                "stream": True,
                "messages": [{"role": "user", "content": "Hi [sim:disconnect]"}],
            },
        ),
    ],
)
def test_a_disconnect_breaks_the_connection_after_part_of_the_reply(
    live_sim: RunningSim, path: str, body: dict[str, object]
) -> None:
    received = bytearray()
    with (
        httpx.Client(base_url=live_sim.base_url) as client,
        client.stream("POST", path, json=body) as response,
    ):
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            _read_into(received, response)

    assert received  # part of the reply arrived first
    assert b"[DONE]" not in received
    assert b"message_stop" not in received


def test_the_server_keeps_serving_after_faults(live_sim: RunningSim) -> None:
    with httpx.Client(base_url=live_sim.base_url) as client:
        stats = client.get("/_sim/stats")
        health = client.get("/healthz")

    assert stats.status_code == health.status_code == 200


def _read_into(received: bytearray, response: httpx.Response) -> None:
    for data in response.iter_bytes():
        received += data
