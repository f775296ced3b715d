"""Capacity shared across replicas (issue 5): a provider account's limits hold for all its
worker replicas together, and a vendor's rate limiting is waited out without a retry storm.

- ``moonshot`` has ``rpm: 20`` in the test stack's routing config (tests/routing.test.yaml). A
  second worker replica joins the stack's own; 30 requests go out at once. The simulator records
  when each call arrived: no 60 s window may hold more than 20, and all 30 are answered.
- ``deepseek-chat`` answers 429 with ``retry-after: 2`` for 10 s, under 200 concurrent requests
  with no fallback: all are answered once it recovers, and the calls it saw stay within a
  bound stated below.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from services.stack import RunningStack
from tests.e2e.failover.failover_support import (
    end_sim_outages,
    extra_worker,
    sim_call_times_ms,
    sim_calls_by_model,
    sim_outage,
)
from tests.e2e.faults.fault_support import Outcome, ingress_client, post_chat

pytestmark = pytest.mark.e2e

RPM = 20
# The simulator stamps a call when it arrives, the limiter when it admits it; a few ms of
# delivery jitter separate the two, so windows a little shorter than a minute are checked.
WINDOW_MS = 59_500


async def ask_many(
    http: httpx.AsyncClient, model: str, label: str, count: int, *, deadline_s: float
) -> list[Outcome]:
    """``count`` requests to ``model`` at once, each with a conversation of its own."""
    return await asyncio.gather(
        *(
            post_chat(
                http,
                {
                    "model": model,
                    "messages": [{"role": "user", "content": f"{label} {uuid.uuid4().hex}"}],
                },
                deadline_s=deadline_s,
            )
            for _ in range(count)
        )
    )


def most_in_any_window(times_ms: list[int], window_ms: int) -> int:
    times = sorted(times_ms)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window_ms:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_two_replicas_share_one_requests_per_minute_limit(full_stack: RunningStack) -> None:
    model, vendor_model = "moonshot/kimi-k2.5", "kimi-k2.5"
    before = len(sim_call_times_ms(full_stack, vendor_model))
    with extra_worker(full_stack, "moonshot"):
        async with ingress_client(full_stack) as http:
            outcomes = await ask_many(http, model, "rpm", 30, deadline_s=100.0)
    times = sim_call_times_ms(full_stack, vendor_model)[before:]
    busiest = most_in_any_window(times, WINDOW_MS)
    spread_s = (max(times) - min(times)) / 1000
    print(
        f"\n30 requests, rpm {RPM}: {len(times)} calls over {spread_s:.1f} s, "
        f"busiest minute {busiest}"
    )
    assert [o.status for o in outcomes] == [200] * 30, [o.body for o in outcomes if o.status != 200]
    assert len(times) == 30  # no request lost, none called twice
    assert busiest <= RPM
    assert spread_s >= 60 - 1  # the last ten waited for the first minute to pass


async def test_a_rate_limited_vendor_is_waited_out_without_a_retry_storm(
    full_stack: RunningStack,
) -> None:
    model, vendor_model = "deepseek/deepseek-chat", "deepseek-chat"
    requests = 200
    before = sim_calls_by_model(full_stack).get(vendor_model, 0)
    sim_outage(full_stack, model=vendor_model, status=429, seconds=10, retry_after_s=2)
    started = time.monotonic()
    try:
        async with ingress_client(full_stack) as http:
            outcomes = await ask_many(http, model, "storm", requests, deadline_s=60.0)
    finally:
        end_sim_outages(full_stack)
    elapsed = time.monotonic() - started
    calls = sim_calls_by_model(full_stack).get(vendor_model, 0) - before
    refused = calls - requests
    print(
        f"\n{requests} requests under 10 s of 429 (retry-after 2): {calls} vendor calls "
        f"({refused} refused), all answered after {elapsed:.1f} s"
    )
    statuses = sorted({o.status for o in outcomes})
    assert statuses == [200], [o.body for o in outcomes if o.status != 200][:3]
    assert elapsed >= 10 - 1  # nobody was answered by a vendor that was refusing
    # The bound: without pacing, each request would retry on its own every 2 s for 10 s (200 x
    # 6 = 1,200 calls). Shared pauses and the halving concurrency keep the refused calls below
    # two per request.
    assert refused < 2 * requests
