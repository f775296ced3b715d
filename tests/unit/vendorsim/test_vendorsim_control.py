"""The ``/_sim`` control endpoints, health, and the simulated label on every response."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from services.vendorsim import SimKnobs, VendorSim
from services.vendorsim.calls import MAX_TIMES_PER_MODEL, CallLog
from tests.unit.vendorsim.vendorsim_requests import anthropic_messages, openai_chat


async def test_config_reads_and_changes_knobs(sim: httpx.AsyncClient) -> None:
    before = (await sim.get("/_sim/config")).json()
    changed = await sim.post("/_sim/config", json={"output_tokens": 5, "ttft_ms": 0})
    after = (await sim.get("/_sim/config")).json()
    completion = await sim.post("/v1/chat/completions", json=openai_chat("Hi"))

    assert before["output_tokens"] == 16
    assert changed.status_code == 200
    assert changed.json() == after
    assert after["output_tokens"] == 5
    assert completion.json()["usage"]["completion_tokens"] == 5


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"no_such_knob": 1}, "no_such_knob"),
        ({"error_rate_429": 1.5}, "error_rate_429"),
        ({"error_rate_429": 0.6, "error_rate_500": 0.6}, "more than 1"),
        ({"output_tokens": 0}, "output_tokens"),
        ([1, 2], "JSON object"),
    ],
)
async def test_a_bad_config_change_is_refused_whole(
    sim: httpx.AsyncClient, change: object, complaint: str
) -> None:
    before = (await sim.get("/_sim/config")).json()
    response = await sim.post("/_sim/config", json=change)

    assert response.status_code == 400
    assert complaint in response.json()["error"]["message"]
    assert (await sim.get("/_sim/config")).json() == before


async def test_reset_restores_knobs_and_forgets_failures(sim: httpx.AsyncClient) -> None:
    body = openai_chat("Once [sim:fail=429x1]")
    await sim.post("/_sim/config", json={"output_tokens": 3})
    assert (await sim.post("/v1/chat/completions", json=body)).status_code == 429
    assert (await sim.post("/v1/chat/completions", json=body)).status_code == 200

    reset = await sim.post("/_sim/reset")

    assert reset.json()["output_tokens"] == 16
    assert (await sim.post("/v1/chat/completions", json=body)).status_code == 429


async def test_stats_count_vendor_calls(sim: httpx.AsyncClient) -> None:
    await sim.post("/v1/chat/completions", json=openai_chat("a"))
    await sim.post("/v1/chat/completions", json=openai_chat("b [sim:fail=500]"))
    await sim.get("/healthz")
    stats = (await sim.get("/_sim/stats")).json()

    assert stats == {
        "requests": 2,
        "by_endpoint": {"/v1/chat/completions": 2},
        "by_status": {"200": 1, "500": 1},
        "by_model": {"gpt-sim": 2},
    }


async def test_stats_count_chat_calls_by_model_whatever_their_status(
    sim: httpx.AsyncClient,
) -> None:
    await sim.post("/v1/chat/completions", json=openai_chat("a", model="gpt-4o-mini"))
    await sim.post(
        "/v1/chat/completions", json=openai_chat("b [sim:fail=429]", model="gpt-4o-mini")
    )
    await sim.post("/v1/messages", json=anthropic_messages("c", model="claude-haiku-4-5"))
    await sim.post("/v1/messages", json=anthropic_messages("d [sim:fail=529]"))
    await sim.post("/v1/messages/count_tokens", json=anthropic_messages("not a chat call"))
    await sim.post("/v1/chat/completions", json={"messages": "not a request"})  # no model
    by_model = (await sim.get("/_sim/stats")).json()["by_model"]

    assert by_model == {"gpt-4o-mini": 2, "claude-haiku-4-5": 1, "claude-sim": 1}


async def test_calls_lists_when_each_call_to_a_model_arrived(sim: httpx.AsyncClient) -> None:
    model = "openai/gpt-4o mini"  # one that needs percent-encoding in a query string
    before_ms = time.time_ns() // 1_000_000
    for i in range(3):
        await sim.post("/v1/chat/completions", json=openai_chat(f"q{i}", model=model))
    await sim.post("/v1/messages", json=anthropic_messages("other", model="claude-haiku-4-5"))
    after_ms = time.time_ns() // 1_000_000

    one = (await sim.get("/_sim/calls", params={"model": model})).json()
    every = (await sim.get("/_sim/calls")).json()
    unseen = (await sim.get("/_sim/calls", params={"model": "never-called"})).json()

    assert one["model"] == model
    assert len(one["calls_ms"]) == 3
    assert one["calls_ms"] == sorted(one["calls_ms"])
    assert before_ms <= one["calls_ms"][0] <= one["calls_ms"][-1] <= after_ms
    assert every["by_model"][model] == one["calls_ms"]
    assert len(every["by_model"]["claude-haiku-4-5"]) == 1
    assert set(every["by_model"]) == {model, "claude-haiku-4-5"}
    assert unseen == {"model": "never-called", "calls_ms": []}


async def test_a_call_is_counted_when_it_arrives_not_when_it_is_answered(
    sim: httpx.AsyncClient,
) -> None:
    await sim.post("/_sim/config", json={"timeout_hang_s": 0.3})
    body = openai_chat("Hang [sim:fail=timeout]", model="slow-model")
    hanging = asyncio.create_task(sim.post("/v1/chat/completions", json=body))
    for _ in range(100):
        stats = (await sim.get("/_sim/stats")).json()
        if stats["by_model"]:
            break
        await asyncio.sleep(0.005)
    calls = (await sim.get("/_sim/calls", params={"model": "slow-model"})).json()

    assert not hanging.done()
    assert stats["by_model"] == {"slow-model": 1}
    assert stats["requests"] == 0  # not answered yet
    assert len(calls["calls_ms"]) == 1
    assert (await hanging).status_code == 504


def test_the_call_log_keeps_only_the_latest_times_but_counts_every_call() -> None:
    ticks = iter(range(10**9))
    log = CallLog(clock=lambda: next(ticks))
    for _ in range(MAX_TIMES_PER_MODEL + 5):
        log.record("busy")
    log.record("quiet")

    times = log.times_ms("busy")
    assert len(times) == MAX_TIMES_PER_MODEL
    assert (times[0], times[-1]) == (5, MAX_TIMES_PER_MODEL + 4)
    assert log.by_model == {"busy": MAX_TIMES_PER_MODEL + 5, "quiet": 1}
    assert log.times_ms("quiet") == [MAX_TIMES_PER_MODEL + 5]


async def test_reset_ends_outages_and_forgets_calls(
    sim: httpx.AsyncClient, sim_app: VendorSim
) -> None:
    body = openai_chat("Hi", model="gpt-4o-mini")
    await sim.post("/_sim/outage", json={"model": "gpt-4o-mini", "status": 500, "seconds": 60})
    assert (await sim.post("/v1/chat/completions", json=body)).status_code == 500

    await sim.post("/_sim/reset")

    assert (await sim.get("/_sim/outage")).json() == {"outages": []}
    assert (await sim.get("/_sim/calls")).json() == {"by_model": {}}
    assert (await sim.get("/_sim/stats")).json()["by_model"] == {}
    assert sim_app.state.outages.current("gpt-4o-mini") is None
    assert (await sim.post("/v1/chat/completions", json=body)).status_code == 200


async def test_health_and_unknown_paths_are_labelled(sim: httpx.AsyncClient) -> None:
    health = await sim.get("/healthz")
    missing = await sim.get("/v2/nothing")

    assert health.status_code == 200
    assert missing.status_code == 404
    assert health.headers["x-switchyard-simulated"] == "true"
    assert missing.headers["x-switchyard-simulated"] == "true"


def test_knobs_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_VENDORSIM_TTFT_MS", "250")
    monkeypatch.setenv("SWITCHYARD_VENDORSIM_ERROR_RATE_429", "0.1")

    knobs = SimKnobs()

    assert (knobs.ttft_ms, knobs.error_rate_429) == (250.0, 0.1)
    # A run-time change keeps the environment's values for the knobs it does not name.
    assert knobs.updated({"itl_ms": 5}).ttft_ms == 250.0
