"""Failures on demand, in-process: counted failures, hangs, broken replies and the rates."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.unit.vendorsim.vendorsim_requests import anthropic_messages, openai_chat

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"


async def test_a_counted_failure_fails_that_many_times_then_answers(
    sim: httpx.AsyncClient,
) -> None:
    body = openai_chat("Flaky one [sim:fail=429x2]")
    statuses = [(await sim.post(OPENAI, json=body)).status_code for _ in range(4)]
    other = await sim.post(OPENAI, json=openai_chat("Flaky two [sim:fail=429x2]"))

    assert statuses == [429, 429, 200, 200]
    assert other.status_code == 429  # another conversation keeps its own count


async def test_the_failure_count_is_per_conversation_not_per_protocol(
    sim: httpx.AsyncClient,
) -> None:
    prompt = "Shared count [sim:fail=500x1]"
    first = await sim.post(OPENAI, json=openai_chat(prompt))
    second = await sim.post(ANTHROPIC, json=anthropic_messages(prompt))

    assert (first.status_code, second.status_code) == (500, 200)


async def test_a_fail_directive_naming_a_model_fails_only_that_model(
    sim: httpx.AsyncClient,
) -> None:
    prompt = "Only one model is down [sim:fail=503@gpt-4o-mini]"
    named = await sim.post(OPENAI, json=openai_chat(prompt, model="gpt-4o-mini"))
    other = await sim.post(OPENAI, json=openai_chat(prompt, model="gpt-4o"))
    near_miss = await sim.post(OPENAI, json=openai_chat(prompt, model="gpt-4o-mini-2024"))

    assert named.status_code == 503
    assert other.status_code == 200
    assert near_miss.status_code == 200  # the name is compared exactly, not as a prefix


async def test_fail_directives_for_several_models_in_one_prompt(sim: httpx.AsyncClient) -> None:
    prompt = "Fallback chain [sim:fail=503@gpt-4o-mini] [sim:fail=500@claude-haiku-4-5]"
    first = await sim.post(OPENAI, json=openai_chat(prompt, model="gpt-4o-mini"))
    second = await sim.post(ANTHROPIC, json=anthropic_messages(prompt, model="claude-haiku-4-5"))
    third = await sim.post(OPENAI, json=openai_chat(prompt, model="gpt-4o"))

    assert (first.status_code, second.status_code, third.status_code) == (503, 500, 200)


async def test_a_model_scoped_timeout_hangs_only_that_model(sim: httpx.AsyncClient) -> None:
    await sim.post("/_sim/config", json={"timeout_hang_s": 0.01})
    prompt = "Slow model [sim:fail=timeout@claude-sonnet-4-5]"
    named = await sim.post(ANTHROPIC, json=anthropic_messages(prompt, model="claude-sonnet-4-5"))
    other = await sim.post(ANTHROPIC, json=anthropic_messages(prompt, model="claude-haiku-4-5"))

    assert (named.status_code, other.status_code) == (504, 200)


async def test_a_counted_failure_naming_a_model_counts_per_model(sim: httpx.AsyncClient) -> None:
    prompt = "Once each [sim:fail=503x1@a] [sim:fail=429x2@b]"
    # Calls to other models in between must not use up the named models' counts.
    statuses = [
        (await sim.post(OPENAI, json=openai_chat(prompt, model=model))).status_code
        for model in ["c", "a", "b", "c", "a", "b", "b"]
    ]

    assert statuses == [200, 503, 429, 200, 200, 429, 200]


async def test_the_per_model_count_is_per_conversation_too(sim: httpx.AsyncClient) -> None:
    first = await sim.post(OPENAI, json=openai_chat("One [sim:fail=503x1@a]", model="a"))
    again = await sim.post(OPENAI, json=openai_chat("One [sim:fail=503x1@a]", model="a"))
    other = await sim.post(OPENAI, json=openai_chat("Two [sim:fail=503x1@a]", model="a"))

    assert (first.status_code, again.status_code, other.status_code) == (503, 200, 503)


async def test_a_failure_naming_the_model_beats_one_for_every_model(
    sim: httpx.AsyncClient,
) -> None:
    prompt = "Mixed [sim:fail=503@a] [sim:fail=500]"
    named = await sim.post(OPENAI, json=openai_chat(prompt, model="a"))
    other = await sim.post(OPENAI, json=openai_chat(prompt, model="b"))

    assert (named.status_code, other.status_code) == (503, 500)


async def test_an_uncounted_failure_always_fails(sim: httpx.AsyncClient) -> None:
    body = anthropic_messages("Down [sim:fail=529]")
    statuses = {(await sim.post(ANTHROPIC, json=body)).status_code for _ in range(3)}

    assert statuses == {529}


async def test_a_hang_ends_in_a_timeout_error_if_the_client_waits(
    sim: httpx.AsyncClient,
) -> None:
    await sim.post("/_sim/config", json={"timeout_hang_s": 0.01})
    openai = await sim.post(OPENAI, json=openai_chat("Slow [sim:fail=timeout]"))
    anthropic = await sim.post(ANTHROPIC, json=anthropic_messages("Slow [sim:fail=timeout]"))

    assert openai.status_code == anthropic.status_code == 504
    assert openai.json()["error"]["type"] == "server_error"
    assert anthropic.json()["error"]["type"] == "timeout_error"


async def test_retry_after_follows_the_knob(sim: httpx.AsyncClient) -> None:
    await sim.post("/_sim/config", json={"retry_after_s": 2.5})
    response = await sim.post(OPENAI, json=openai_chat("[sim:fail=429]"))

    assert response.headers["retry-after"] == "3"
    assert response.headers["retry-after-ms"] == "2500"


@pytest.mark.parametrize(("rate", "status"), [("error_rate_429", 429), ("error_rate_500", 500)])
async def test_a_certain_error_rate_fails_every_call(
    sim: httpx.AsyncClient, rate: str, status: int
) -> None:
    await sim.post("/_sim/config", json={rate: 1.0})
    statuses = {(await sim.post(OPENAI, json=openai_chat(f"q{i}"))).status_code for i in range(5)}

    assert statuses == {status}


async def test_a_seed_makes_random_errors_repeatable(sim: httpx.AsyncClient) -> None:
    async def run() -> list[int]:
        await sim.post("/_sim/config", json={"error_rate_429": 0.5, "seed": 7})
        return [(await sim.post(OPENAI, json=openai_chat("q"))).status_code for _ in range(20)]

    first = await run()
    second = await run()

    assert first == second
    assert set(first) == {200, 429}


async def test_a_malformed_stream_holds_a_line_that_is_not_json(sim: httpx.AsyncClient) -> None:
    response = await sim.post(OPENAI, json=openai_chat("Hi [sim:malformed]", stream=True))
    data = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]

    broken = [i for i, d in enumerate(data) if d.startswith("{") and not d.endswith("}")]
    assert len(broken) == 1
    assert 1 < broken[0] < len(data) - 1  # after the first token, before the end


async def test_a_malformed_plain_reply_is_cut_short(sim: httpx.AsyncClient) -> None:
    response = await sim.post(ANTHROPIC, json=anthropic_messages("Hi [sim:malformed]"))

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_delays_change_no_byte_of_the_reply_but_ids(sim: httpx.AsyncClient) -> None:
    body = openai_chat("Pace me", stream=True, stream_options={"include_usage": True})
    quick = await sim.post(OPENAI, json=body)
    await sim.post("/_sim/config", json={"ttft_ms": 1, "itl_ms": 1})
    paced = await sim.post(OPENAI, json=body)

    def contents(text: str) -> list[object]:
        chunks = [json.loads(e[6:]) for e in text.split("\n\n") if e.startswith("data: {")]
        return [(c["choices"], c.get("usage")) for c in chunks]

    assert contents(paced.text) == contents(quick.text)
    assert len(contents(paced.text)) == 16 + 3
