"""The official OpenAI SDK against the whole stack: ingress -> Kafka -> router -> Kafka -> worker
-> vendor simulator, replies back through Redis, usage through Kafka into ClickHouse (chDB).

Every expectation is exact: the simulator's token rule (``services.vendorsim.tokens``) gives the
usage, the catalogue's prices give the cost, and metering's API shows what ClickHouse stored.
"""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import openai
import pytest
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)

from services.stack import RunningStack
from tests.e2e.e2e_support import (
    PNG_DATA_URL,
    WEATHER_TOOL,
    Metering,
    assert_ok_row,
    assert_openai_error,
    assert_unpriced_failure,
    sim_prompt_tokens,
    sim_tool_call_tokens,
    single_ok_row,
    unique,
)

pytestmark = pytest.mark.e2e

GPT = "openai/gpt-4o-mini"
CLAUDE = "anthropic/claude-sonnet-4-5"
SYSTEM = "You are a terse assistant."

# (model as the caller names it, canonical id, provider)
CHAT_MODELS = [
    pytest.param("gpt-4o-mini", GPT, "openai", id="openai-bare-id"),
    pytest.param(GPT, GPT, "openai", id="openai-canonical-id"),
    pytest.param(CLAUDE, CLAUDE, "anthropic", id="anthropic"),
]
# (canonical id, provider): one model per vendor protocol.
PROVIDERS = [
    pytest.param(GPT, "openai", id="openai"),
    pytest.param(CLAUDE, "anthropic", id="anthropic"),
]


def _request_id(completion_id: str) -> str:
    assert completion_id.startswith("chatcmpl-"), completion_id
    return completion_id.removeprefix("chatcmpl-")


def _text(completion: ChatCompletion) -> str:
    content = completion.choices[0].message.content
    assert content is not None
    return content


# Plain chat ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("requested", "canonical", "provider"), CHAT_MODELS)
def test_chat_completion_is_answered_counted_and_priced(
    client: openai.OpenAI, metering: Metering, requested: str, canonical: str, provider: str
) -> None:
    prompt = f"{unique('Say hello, please!')} [sim:tokens=7]"
    raw = client.chat.completions.with_raw_response.create(
        model=requested,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
    )
    completion = raw.parse()

    request_id = raw.headers["x-request-id"]
    assert _request_id(completion.id) == request_id
    assert raw.headers["x-switchyard-simulated"] == "true"
    assert completion.object == "chat.completion"
    assert completion.model == canonical
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert len(_text(completion).split()) == 7
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == sim_prompt_tokens(SYSTEM, prompt)
    assert usage.completion_tokens == 7
    assert usage.total_tokens == usage.prompt_tokens + 7

    row = single_ok_row(
        metering,
        request_id=request_id,
        provider=provider,
        model=canonical,
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
    )
    assert row["requested_model"] == requested
    assert row["protocol"] == "openai.chat_completions"
    assert row["mode"] == "sync"


@pytest.mark.parametrize(("canonical", "provider"), PROVIDERS)
def test_streamed_chat_matches_the_plain_answer_and_is_priced(
    client: openai.OpenAI, metering: Metering, canonical: str, provider: str
) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{unique('Tell me a story.')} [sim:tokens=12]"},
    ]
    raw = client.chat.completions.with_raw_response.create(
        model=canonical, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    request_id = raw.headers["x-request-id"]
    assert raw.headers["content-type"].startswith("text/event-stream")
    with raw.parse() as stream:
        chunks = list(stream)

    assert chunks, "the stream sent nothing"
    assert {_request_id(chunk.id) for chunk in chunks} == {request_id}
    assert {chunk.model for chunk in chunks} == {canonical}
    streamed = "".join(choice.delta.content or "" for chunk in chunks for choice in chunk.choices)
    finishes = [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason]
    assert finishes == ["stop"]
    # include_usage: the last chunk carries the usage and no choices; no other chunk does.
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert last.usage.prompt_tokens == sim_prompt_tokens(SYSTEM, str(messages[1]["content"]))
    assert last.usage.completion_tokens == 12

    # The simulator answers one conversation the same way every time, streamed or not.
    plain = client.chat.completions.create(model=canonical, messages=messages)
    assert streamed == _text(plain)
    assert len(streamed.split()) == 12

    row = single_ok_row(
        metering,
        request_id=request_id,
        provider=provider,
        model=canonical,
        input_tokens=last.usage.prompt_tokens,
        output_tokens=12,
    )
    assert row["mode"] == "stream"


# Tools ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("canonical", "provider"), PROVIDERS)
def test_tool_call_round_trip(
    client: openai.OpenAI, metering: Metering, canonical: str, provider: str
) -> None:
    prompt = f"{unique('What is the weather in Lisbon?')} [sim:tool]"
    first = client.chat.completions.create(
        model=canonical, messages=[{"role": "user", "content": prompt}], tools=[WEATHER_TOOL]
    )

    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None
    assert len(calls) == 1
    call = calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.id
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments, dict)
    assert set(arguments) == {"city", "unit"}
    assert isinstance(arguments["city"], str)
    assert arguments["unit"] in {"celsius", "fahrenheit"}
    assert first.usage is not None
    assert first.usage.prompt_tokens == sim_prompt_tokens(prompt, tools=[WEATHER_TOOL])
    assert first.usage.completion_tokens == sim_tool_call_tokens(
        "get_weather", call.function.arguments
    )
    first_id = _request_id(first.id)

    result = json.dumps({"temperature": 21, "unit": "celsius", "sky": "clear"})
    second = client.chat.completions.create(
        model=canonical,
        messages=[
            {"role": "user", "content": prompt},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": call.function.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": result},
        ],
        tools=[WEATHER_TOOL],
    )

    # The last message is a tool result, not the user's: the [sim:tool] directive is spent.
    answer = second.choices[0]
    assert answer.finish_reason == "stop"
    assert not answer.message.tool_calls
    text = _text(second)
    assert text.strip()
    assert second.usage is not None
    assert second.usage.prompt_tokens == sim_prompt_tokens(
        prompt, f"get_weather {call.function.arguments}", result, tools=[WEATHER_TOOL]
    )
    assert second.usage.completion_tokens == len(text.split())

    for completion in (first, second):
        request_id = _request_id(completion.id)
        assert completion.usage is not None
        single_ok_row(
            metering,
            request_id=request_id,
            provider=provider,
            model=canonical,
            input_tokens=completion.usage.prompt_tokens,
            output_tokens=completion.usage.completion_tokens,
        )
    assert first_id != _request_id(second.id)


@pytest.mark.parametrize(("canonical", "provider"), PROVIDERS)
def test_streamed_tool_call(
    client: openai.OpenAI, metering: Metering, canonical: str, provider: str
) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": f"{unique('Weather in Oslo?')} [sim:tool]"}
    ]
    stream = client.chat.completions.create(
        model=canonical,
        messages=messages,
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    with stream:
        chunks = list(stream)

    names: list[str] = []
    ids: list[str] = []
    arguments = ""
    finishes: list[str] = []
    for chunk in chunks:
        for choice in chunk.choices:
            assert not choice.delta.content
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
            for delta in choice.delta.tool_calls or []:
                assert delta.index == 0
                if delta.id:
                    ids.append(delta.id)
                if delta.function is not None:
                    if delta.function.name:
                        names.append(delta.function.name)
                    arguments += delta.function.arguments or ""
    assert finishes == ["tool_calls"]
    assert names == ["get_weather"]
    assert len(ids) == 1
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens == sim_tool_call_tokens("get_weather", arguments)

    # The same conversation unstreamed gets the same call.
    plain = client.chat.completions.create(model=canonical, messages=messages, tools=[WEATHER_TOOL])
    calls = plain.choices[0].message.tool_calls
    assert calls is not None
    assert isinstance(calls[0], ChatCompletionMessageFunctionToolCall)
    assert json.loads(arguments) == json.loads(calls[0].function.arguments)

    request_id = _request_id(chunks[0].id)
    single_ok_row(
        metering,
        request_id=request_id,
        provider=provider,
        model=canonical,
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
    )


# Images and cached tokens --------------------------------------------------------------------


@pytest.mark.parametrize(("canonical", "provider"), PROVIDERS)
def test_an_image_part_is_accepted_by_a_vision_model(
    client: openai.OpenAI, metering: Metering, canonical: str, provider: str
) -> None:
    text = unique("What is in this picture?")
    completion = client.chat.completions.create(
        model=canonical,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": text},
                    {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
                ],
            }
        ],
    )

    assert _text(completion).strip()
    assert completion.usage is not None
    # The image reached the vendor as an image: the simulator counts IMAGE_TOKENS for it.
    assert completion.usage.prompt_tokens == sim_prompt_tokens(text, images=1)
    request_id = _request_id(completion.id)
    single_ok_row(
        metering,
        request_id=request_id,
        provider=provider,
        model=canonical,
        input_tokens=completion.usage.prompt_tokens,
        output_tokens=completion.usage.completion_tokens,
    )


@pytest.mark.parametrize(("canonical", "provider"), PROVIDERS)
def test_cached_prompt_tokens_are_reported_and_billed_at_the_cache_price(
    client: openai.OpenAI, metering: Metering, canonical: str, provider: str
) -> None:
    long_context = " ".join(f"fact{i}" for i in range(150))
    prompt = f"{unique('Summarise:')} {long_context} [sim:cache=100] [sim:tokens=5]"
    completion = client.chat.completions.create(
        model=canonical, messages=[{"role": "user", "content": prompt}]
    )

    usage = completion.usage
    assert usage is not None
    # OpenAI's semantics: prompt_tokens includes the cached ones.
    assert usage.prompt_tokens == sim_prompt_tokens(prompt)
    assert usage.prompt_tokens > 100
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 100
    assert usage.completion_tokens == 5

    request_id = _request_id(completion.id)
    single_ok_row(
        metering,
        request_id=request_id,
        provider=provider,
        model=canonical,
        input_tokens=usage.prompt_tokens,
        output_tokens=5,
        cached_tokens=100,
    )


# Retries and failures ------------------------------------------------------------------------


def test_rate_limited_attempts_are_retried_and_only_the_success_is_charged(
    client: openai.OpenAI, metering: Metering
) -> None:
    prompt = f"{unique('Retry me')} [sim:fail=429x2] [sim:tokens=4]"
    completion = client.chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": prompt}]
    )

    assert len(_text(completion).split()) == 4
    request_id = _request_id(completion.id)
    rows = metering.wait_rows(request_id, count=3)
    assert len(rows) == 3, rows
    assert [row["attempt"] for row in rows] == [0, 1, 2]
    for failed in rows[:2]:
        assert_unpriced_failure(failed, request_id=request_id, error_class="vendor_rate_limited")
    assert completion.usage is not None
    assert_ok_row(
        rows[2],
        request_id=request_id,
        provider="openai",
        model=GPT,
        input_tokens=sim_prompt_tokens(prompt),
        output_tokens=4,
    )
    assert completion.usage.prompt_tokens == sim_prompt_tokens(prompt)


def test_a_vendor_that_keeps_failing_gives_a_502_and_costs_nothing(
    client: openai.OpenAI, metering: Metering
) -> None:
    prompt = f"{unique('Always fail')} [sim:fail=500]"
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": prompt}])

    error = raised.value
    assert error.status_code == 502
    body = error.response.json()
    assert_openai_error(body, status_type="api_error")
    assert body["error"]["code"] == "vendor_error"
    request_id = error.request_id
    assert request_id
    # The worker tried three times (worker_max_attempts) and charged for none.
    rows = metering.wait_rows(request_id, count=3)
    assert len(rows) == 3, rows
    assert [row["attempt"] for row in rows] == [0, 1, 2]
    for row in rows:
        assert_unpriced_failure(row, request_id=request_id, error_class="vendor_error")


def test_a_stream_the_caller_closes_stops_the_vendor_call_and_is_charged_what_it_produced(
    client: openai.OpenAI, metering: Metering
) -> None:
    # About six seconds of answer (600 tokens, 10 ms apart) if nobody stopped it.
    prompt = f"{unique('Talk for a while')} [sim:tokens=600] [sim:itl=10]"
    stream = client.chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": prompt}], stream=True
    )
    seen = ""
    for chunk in stream:
        seen += (chunk.choices[0].delta.content or "") if chunk.choices else ""
        if seen.strip():
            break  # the caller has what it wanted and hangs up
    stream.close()
    request_id = _request_id(chunk.id)

    # The worker notices within a second and stops. The vendor bills what it produced until
    # then and never said how much (its usage comes last): counted, and marked estimated.
    [row] = metering.wait_rows(request_id)
    assert row["status"] == "error"
    assert row["error_class"] == "cancelled"
    assert row["mode"] == "stream"
    assert row["usage_estimated"] is True
    assert 0 < row["output_tokens"] < 600, "the vendor call was not stopped"
    assert Decimal(row["cost_usd"]) > 0


# The caller's mistakes -----------------------------------------------------------------------


def _bearer(full_stack: RunningStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {full_stack.admin_key}"}


def test_malformed_json_is_a_400(ingress: httpx.Client, full_stack: RunningStack) -> None:
    response = ingress.post(
        "/v1/chat/completions",
        content=b'{"model": "gpt-4o-mini", "messages": [',
        headers={**_bearer(full_stack), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert_openai_error(response.json(), status_type="invalid_request_error")


def test_missing_messages_is_a_400_naming_the_parameter(
    ingress: httpx.Client, full_stack: RunningStack
) -> None:
    response = ingress.post(
        "/v1/chat/completions", json={"model": "gpt-4o-mini"}, headers=_bearer(full_stack)
    )
    assert response.status_code == 400
    assert_openai_error(response.json(), status_type="invalid_request_error", param="messages")


def test_an_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(
            model="no-such-vendor/no-such-model-9000", messages=[{"role": "user", "content": "hi"}]
        )
    body = raised.value.response.json()
    assert_openai_error(body, status_type="invalid_request_error", param="model")
    assert body["error"]["code"] == "model_not_found"


def test_a_wrong_key_is_a_401(full_stack: RunningStack) -> None:
    with (
        openai.OpenAI(
            base_url=full_stack.base_url, api_key="sk-not-the-admin-key-000000", max_retries=0
        ) as stranger,
        pytest.raises(openai.AuthenticationError) as raised,
    ):
        stranger.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert_openai_error(raised.value.response.json(), status_type="authentication_error")


def test_no_key_is_a_401(ingress: httpx.Client) -> None:
    response = ingress.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 401
    assert_openai_error(response.json(), status_type="authentication_error")


def test_the_key_may_come_as_x_api_key(ingress: httpx.Client, full_stack: RunningStack) -> None:
    response = ingress.post(
        "/v1/chat/completions",
        json={
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": unique("x-api-key")}],
        },
        headers={"x-api-key": full_stack.admin_key},
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


def test_a_body_over_the_limit_is_a_413(ingress: httpx.Client, full_stack: RunningStack) -> None:
    filler = "a" * (21 * 1024 * 1024)
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": filler}]}
    ).encode()
    response = ingress.post(
        "/v1/chat/completions",
        content=body,
        headers={**_bearer(full_stack), "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert_openai_error(response.json(), status_type="invalid_request_error")
    assert response.json()["error"]["code"] == "payload_too_large"


def test_unicode_and_hostile_tags_are_stored_verbatim(
    client: openai.OpenAI, metering: Metering
) -> None:
    prompt = (
        f"{unique('Translate')}: 🚀👩‍💻 café naïve — مرحبا بالعالم (שלום עולם) "
        "你好，世界！こんにちは 안녕하세요 [sim:tokens=3]"
    )
    tags = {
        "tag": "'); DROP TABLE usage_events; --",
        "quote": 'a "quoted" \\ back\\slash \' and `tick`',
        "unicode": "שלום 你好 🚀",
        "ключ": "значение",
    }
    completion = client.chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": prompt}], metadata=tags
    )

    assert len(_text(completion).split()) == 3
    assert completion.usage is not None
    # The prompt reached the vendor unchanged: the count covers every emoji and script.
    assert completion.usage.prompt_tokens == sim_prompt_tokens(prompt)
    request_id = _request_id(completion.id)
    row = single_ok_row(
        metering,
        request_id=request_id,
        provider="openai",
        model=GPT,
        input_tokens=completion.usage.prompt_tokens,
        output_tokens=3,
    )
    assert row["tags"] == tags

    # The table is still there and still takes rows.
    after = client.chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": unique("still there?")}]
    )
    after_rows = metering.wait_rows(_request_id(after.id))
    assert len(after_rows) == 1
    assert after_rows[0]["status"] == "ok"
    assert after_rows[0]["tags"] == {}
    assert Decimal(after_rows[0]["cost_usd"]) > 0


# Discovery and operations --------------------------------------------------------------------


def test_models_are_listed(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    ids = [model.id for model in models]
    assert len(ids) >= 200
    assert len(set(ids)) == len(ids)
    assert GPT in ids
    assert CLAUDE in ids
    assert all(model.object == "model" for model in models)


def test_health_and_metrics(ingress: httpx.Client, client: openai.OpenAI) -> None:
    # At least one chat request has been counted, whichever test ran before.
    client.chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": unique("metrics")}]
    )
    health = ingress.get("/healthz")
    assert health.status_code == 200
    assert health.json()["ok"] is True

    metrics = ingress.get("/metrics")
    assert metrics.status_code == 200
    lines = [
        line
        for line in metrics.text.splitlines()
        if line.startswith("sy_ingress_chat_requests_total{")
    ]
    assert any('mode="sync"' in line and 'status="ok"' in line for line in lines), lines
