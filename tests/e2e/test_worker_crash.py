"""A worker SIGKILLed with many vendor calls in flight loses no request and charges none twice.

The vendor simulator is slowed down so that the calls are still in flight when the OpenAI worker
dies. Its uncommitted dispatch messages go back to the consumer group, the restarted worker serves
them again, and every caller still gets its answer. Metering must then hold exactly one ok row per
request: a call the dead worker had finished (and reported) before the crash is recognised when it
comes round again, by its request id, attempt and event id.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest

from services.stack import RunningStack
from tests.e2e.e2e_support import Metering

pytestmark = pytest.mark.e2e

MODEL = "openai/gpt-4o-mini"
REQUESTS = 120
SLOW_TTFT_MS = 1500.0
# Bounds, never assertions: a SIGKILLed consumer's partitions move only after its session times
# out (10 s), and a loaded machine may be slower still.
CLIENT_TIMEOUT_S = 180.0
USAGE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Answer:
    prompt: str
    status: int
    request_id: str
    content: str | None


@pytest.fixture
def slow_vendor(full_stack: RunningStack) -> Iterator[None]:
    """Every simulated vendor call takes SLOW_TTFT_MS before its first byte, for this test only."""
    config_url = f"http://127.0.0.1:{full_stack.layout.vendorsim_port}/_sim/config"
    with httpx.Client(timeout=10.0, trust_env=False) as http:
        before = http.get(config_url)
        before.raise_for_status()
        previous_ttft = before.json()["ttft_ms"]
        changed = http.post(config_url, json={"ttft_ms": SLOW_TTFT_MS})
        assert changed.status_code == 200, changed.text
        assert changed.json()["ttft_ms"] == SLOW_TTFT_MS
        try:
            yield
        finally:
            http.post(config_url, json={"ttft_ms": previous_ttft}).raise_for_status()


async def _ask(sdk: openai.AsyncOpenAI, prompt: str) -> Answer:
    raw = await sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": prompt}]
    )
    completion = raw.parse()
    request_id = raw.headers["x-request-id"]
    assert completion.id == f"chatcmpl-{request_id}"
    return Answer(
        prompt=prompt,
        status=raw.status_code,
        request_id=request_id,
        content=completion.choices[0].message.content,
    )


async def _vendor_calls_answered(http: httpx.AsyncClient, vendorsim_port: int) -> int:
    response = await http.get(f"http://127.0.0.1:{vendorsim_port}/_sim/stats")
    response.raise_for_status()
    answered: int = response.json()["requests"]
    return answered


@pytest.mark.usefixtures("slow_vendor")
async def test_a_worker_killed_mid_flight_loses_nothing_and_charges_once(
    full_stack: RunningStack, metering: Metering
) -> None:
    stack = full_stack.stack
    vendorsim_port = full_stack.layout.vendorsim_port
    run = uuid.uuid4().hex
    prompts = [f"crash test {run} request {i}: say something" for i in range(REQUESTS)]

    async with (
        openai.AsyncOpenAI(
            base_url=full_stack.base_url,
            api_key=full_stack.admin_key,
            max_retries=0,
            timeout=CLIENT_TIMEOUT_S,
        ) as sdk,
        httpx.AsyncClient(timeout=10.0, trust_env=False) as http,
    ):
        answered_before = await _vendor_calls_answered(http, vendorsim_port)
        calls = [asyncio.create_task(_ask(sdk, prompt)) for prompt in prompts]
        try:
            # Let the requests cross ingress, Kafka and the router and reach the vendor, which
            # holds each one for SLOW_TTFT_MS: the worker dies with its calls in flight.
            await asyncio.sleep(1.0)
            answered_at_kill = await _vendor_calls_answered(http, vendorsim_port)
            before_pid = stack.pid("worker-openai")
            await asyncio.to_thread(stack.kill, "worker-openai", signal.SIGKILL)
            assert not stack.is_running("worker-openai")
            await asyncio.to_thread(stack.restart, "worker-openai")
            assert stack.pid("worker-openai") not in (None, before_pid)

            answers = await asyncio.gather(*calls)
        finally:
            # On a failure above, end the calls still waiting rather than leave them orphaned.
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)

    # Not a timing assertion: only a sanity check that the kill did not come after the work.
    assert answered_at_kill - answered_before < REQUESTS, "the worker was killed after all calls"

    assert [answer.prompt for answer in answers] == prompts
    assert all(answer.status == 200 for answer in answers)
    assert all(answer.content for answer in answers), [a for a in answers if not a.content]
    request_ids = [answer.request_id for answer in answers]
    assert len(set(request_ids)) == REQUESTS

    rows = await metering.wait_all_ok_async(request_ids, timeout_s=USAGE_TIMEOUT_S)
    ok_counts = {rid: sum(row["status"] == "ok" for row in rows[rid]) for rid in request_ids}
    missing = sorted(rid for rid, n in ok_counts.items() if n == 0)
    doubled = sorted(rid for rid, n in ok_counts.items() if n > 1)
    assert missing == [], f"{len(missing)} requests have no ok usage row"
    assert doubled == [], {rid: rows[rid] for rid in doubled[:3]}
    for rid in request_ids:
        event_ids = [row["event_id"] for row in rows[rid]]
        assert len(event_ids) == len(set(event_ids)), rows[rid]
