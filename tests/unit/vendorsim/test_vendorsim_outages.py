"""Timed outages: ``/_sim/outage`` in-process, and the outage board on a clock of its own."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from services.vendorsim.directives import TIMEOUT
from services.vendorsim.faults import Mishap
from services.vendorsim.outages import ANY_MODEL, OutageBoard, OutageOrder
from tests.unit.vendorsim.vendorsim_requests import anthropic_messages, openai_chat

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
OUTAGE = "/_sim/outage"


async def _status(sim: httpx.AsyncClient, model: str, prompt: str = "Hello") -> int:
    return (await sim.post(OPENAI, json=openai_chat(prompt, model=model))).status_code


async def test_an_outage_fails_its_model_until_it_ends(sim: httpx.AsyncClient) -> None:
    started = await sim.post(OUTAGE, json={"model": "gpt-4o-mini", "status": 503, "seconds": 0.3})

    during = await _status(sim, "gpt-4o-mini")
    other = await _status(sim, "gpt-4o")
    await asyncio.sleep(0.35)
    after = await _status(sim, "gpt-4o-mini")

    assert started.status_code == 200
    assert started.json()["model"] == "gpt-4o-mini"
    assert started.json()["status"] == 503
    assert 0 < started.json()["remaining_s"] <= 0.3
    assert (during, other, after) == (503, 200, 200)
    assert (await sim.get(OUTAGE)).json() == {"outages": []}


async def test_an_outage_covers_both_protocols(sim: httpx.AsyncClient) -> None:
    await sim.post(OUTAGE, json={"model": "claude-haiku-4-5", "status": 529, "seconds": 60})
    anthropic = await sim.post(ANTHROPIC, json=anthropic_messages("Hi", model="claude-haiku-4-5"))
    openai = await sim.post(OPENAI, json=openai_chat("Hi", model="claude-haiku-4-5"))

    assert anthropic.status_code == 529
    assert anthropic.json()["error"]["type"] == "overloaded_error"
    assert openai.status_code == 503  # OpenAI's nearest equivalent


async def test_a_429_outage_sends_its_retry_after(sim: httpx.AsyncClient) -> None:
    await sim.post(
        OUTAGE, json={"model": "gpt-4o-mini", "status": 429, "seconds": 60, "retry_after_s": 2}
    )
    response = await sim.post(OPENAI, json=openai_chat("Hi", model="gpt-4o-mini"))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.headers["retry-after-ms"] == "2000"


async def test_an_outage_without_retry_after_sends_the_knobs_one(sim: httpx.AsyncClient) -> None:
    await sim.post("/_sim/config", json={"retry_after_s": 3.5})
    await sim.post(OUTAGE, json={"model": "overloaded", "status": 503, "seconds": 60})
    await sim.post(OUTAGE, json={"model": "broken", "status": 500, "seconds": 60})
    overloaded = await sim.post(OPENAI, json=openai_chat("Hi", model="overloaded"))
    broken = await sim.post(OPENAI, json=openai_chat("Hi", model="broken"))

    assert overloaded.headers["retry-after"] == "4"
    assert overloaded.headers["retry-after-ms"] == "3500"
    assert broken.status_code == 500
    assert "retry-after" not in broken.headers


async def test_a_timeout_outage_hangs(sim: httpx.AsyncClient) -> None:
    await sim.post("/_sim/config", json={"timeout_hang_s": 0.01})
    await sim.post(OUTAGE, json={"model": "gpt-4o", "status": "timeout", "seconds": 60})

    assert await _status(sim, "gpt-4o") == 504


async def test_an_outage_beats_directives_and_rates(sim: httpx.AsyncClient) -> None:
    await sim.post("/_sim/config", json={"error_rate_429": 1.0})
    await sim.post(OUTAGE, json={"model": "m", "status": 500, "seconds": 60})
    prompt = "Down anyway [sim:fail=503x1@m]"
    during = [await _status(sim, "m", prompt), await _status(sim, "m", "[sim:fail=400]")]
    ended = await sim.delete(OUTAGE)
    await sim.post("/_sim/config", json={"error_rate_429": 0.0})
    # The counted directive did not tick during the outage: it still has its one failure.
    after = [await _status(sim, "m", prompt), await _status(sim, "m", prompt)]

    assert during == [500, 500]
    assert ended.json() == {"outages": []}
    assert after == [503, 200]


async def test_an_outage_of_every_model_and_the_model_s_own_first(
    sim: httpx.AsyncClient,
) -> None:
    await sim.post(OUTAGE, json={"model": "*", "status": 502, "seconds": 60})
    await sim.post(OUTAGE, json={"model": "special", "status": 429, "seconds": 60})

    assert await _status(sim, "anything") == 502
    assert await _status(sim, "special") == 429


async def test_a_later_outage_of_the_same_model_replaces_the_earlier(
    sim: httpx.AsyncClient,
) -> None:
    await sim.post(OUTAGE, json={"model": "m", "status": 500, "seconds": 60})
    await sim.post(OUTAGE, json={"model": "m", "status": 429, "seconds": 30, "retry_after_s": 1})
    listed = (await sim.get(OUTAGE)).json()["outages"]

    assert await _status(sim, "m") == 429
    assert len(listed) == 1
    assert listed[0]["model"] == "m"
    assert listed[0]["status"] == 429
    assert listed[0]["retry_after_s"] == 1.0
    assert 29 < listed[0]["remaining_s"] <= 30


async def test_delete_ends_every_outage(sim: httpx.AsyncClient) -> None:
    await sim.post(OUTAGE, json={"model": "a", "status": 500, "seconds": 60})
    await sim.post(OUTAGE, json={"model": "b", "status": "timeout", "seconds": 60})
    listed = (await sim.get(OUTAGE)).json()["outages"]

    await sim.delete(OUTAGE)

    assert sorted((o["model"], o["status"]) for o in listed) == [("a", 500), ("b", "timeout")]
    assert (await sim.get(OUTAGE)).json() == {"outages": []}
    assert await _status(sim, "a") == 200


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ([1, 2], "JSON object"),
        ({"model": "m", "status": 500, "seconds": 1, "extra": 1}, "extra"),
        ({"status": 500, "seconds": 1}, "model"),
        ({"model": "", "status": 500, "seconds": 1}, "model"),
        ({"model": 5, "status": 500, "seconds": 1}, "model"),
        ({"model": "m", "seconds": 1}, "status"),
        ({"model": "m", "status": 200, "seconds": 1}, "status"),
        ({"model": "m", "status": 600, "seconds": 1}, "status"),
        ({"model": "m", "status": "429", "seconds": 1}, "status"),
        ({"model": "m", "status": True, "seconds": 1}, "status"),
        ({"model": "m", "status": 500}, "seconds"),
        ({"model": "m", "status": 500, "seconds": 0}, "seconds"),
        ({"model": "m", "status": 500, "seconds": -1}, "seconds"),
        ({"model": "m", "status": 500, "seconds": "10"}, "seconds"),
        ({"model": "m", "status": 500, "seconds": 1, "retry_after_s": -1}, "retry_after_s"),
        ({"model": "m", "status": 500, "seconds": 1, "retry_after_s": "2"}, "retry_after_s"),
    ],
)
async def test_a_bad_outage_is_refused(sim: httpx.AsyncClient, body: Any, complaint: str) -> None:
    response = await sim.post(OUTAGE, json=body)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert complaint in response.json()["error"]["message"]
    assert (await sim.get(OUTAGE)).json() == {"outages": []}


async def test_a_body_that_is_not_json_is_refused(sim: httpx.AsyncClient) -> None:
    response = await sim.post(OUTAGE, content=b"{not json")

    assert response.status_code == 400
    assert "JSON object" in response.json()["error"]["message"]


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_board_ends_an_outage_when_its_time_is_up() -> None:
    clock = _Clock()
    board = OutageBoard(clock=clock)
    board.start(OutageOrder(model="m", kind=500, seconds=10))

    clock.now += 9.9
    during = board.current("m")
    remaining = board.remaining_s(board.active()[0])
    clock.now += 0.1

    assert during is not None
    assert during.kind == 500
    assert remaining == pytest.approx(0.1)
    assert board.current("m") is None
    assert board.active() == []


def test_the_board_prefers_the_model_s_own_outage_to_the_one_for_every_model() -> None:
    clock = _Clock()
    board = OutageBoard(clock=clock)
    board.start(OutageOrder(model=ANY_MODEL, kind=503, seconds=10))
    board.start(OutageOrder(model="m", kind=TIMEOUT, seconds=5))

    own = board.current("m")
    clock.now += 6
    after_own = board.current("m")

    assert own is not None
    assert own.kind == TIMEOUT
    assert after_own is not None
    assert after_own.kind == 503  # the one for every model goes on


@pytest.mark.parametrize(
    ("kind", "retry_after_s", "expected"),
    [
        (429, 2.0, Mishap(status=429, retry_after_s=2.0)),
        (503, None, Mishap(status=503, retry_after_s=7.0)),
        (529, 0.0, Mishap(status=529, retry_after_s=0.0)),
        (500, 2.0, Mishap(status=500)),  # no retry-after on a plain server error
        (TIMEOUT, 2.0, Mishap(hang=True)),
    ],
)
def test_what_a_call_during_an_outage_gets(
    kind: int | str, retry_after_s: float | None, expected: Mishap
) -> None:
    board = OutageBoard(clock=_Clock())
    outage = board.start(OutageOrder("m", kind, seconds=1, retry_after_s=retry_after_s))

    assert outage.mishap(default_retry_after_s=7.0) == expected
