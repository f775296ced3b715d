"""The ``/_sim`` control endpoints, health, and the simulated label on every response."""

from __future__ import annotations

import httpx
import pytest

from services.vendorsim import SimKnobs
from tests.unit.vendorsim.vendorsim_requests import openai_chat


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
    }


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
