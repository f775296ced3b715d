"""Redis dies and comes back (issue items 1 and 2).

Redis holds what a request needs while it runs (its body key, its replies, its done mark) and
nothing on disk, so a restart loses all of it. What must hold:
- a vendor call that happened is metered whatever happens to Redis (usage goes to Kafka first);
- a caller whose vendor answered while Redis was down gets that answer once Redis is back,
  before its deadline; one whose request lost its state gets a clean 503, not a hang;
- every service reconnects on its own: the first requests after the restart succeed, and a
  Redis failure is never blamed on a vendor.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.stack import RunningStack
from tests.e2e.e2e_support import Metering
from tests.e2e.faults.fault_support import (
    DEADLINE_S,
    Outcome,
    chat_body,
    count_by,
    ingress_client,
    kill,
    post_chat,
    restart,
    restored,
    vendor_calls,
)

pytestmark = pytest.mark.e2e

IN_FLIGHT = 60
VENDOR_TTFT_MS = 2500
# How long Redis stays dead; the vendor answers while it is.
OUTAGE_S = 3.0
AFTER_RESTART = 50


def _vendor_blamed(outcome: Outcome) -> bool:
    return (outcome.error_code or "").startswith("vendor_")


async def test_a_redis_crash_mid_flight_loses_no_answer_and_no_usage(
    full_stack: RunningStack, metering: Metering
) -> None:
    run = uuid.uuid4().hex
    bodies = [
        chat_body(f"redis crash {run} #{i} [sim:ttft={VENDOR_TTFT_MS}]") for i in range(IN_FLIGHT)
    ]
    with restored(full_stack):
        async with ingress_client(full_stack) as http:
            calls_before = await vendor_calls(full_stack)
            pending = [asyncio.create_task(post_chat(http, body)) for body in bodies]
            # The requests reach the vendor, which holds each for VENDOR_TTFT_MS: Redis dies
            # while every vendor call is in flight, and stays dead when they answer.
            await asyncio.sleep(1.0)
            await kill(full_stack, "redis")
            await asyncio.sleep(OUTAGE_S)
            await restart(full_stack, "redis")
            outcomes = await asyncio.gather(*pending)
            vendor_answers = await vendor_calls(full_stack) - calls_before

    print(f"\nredis crash mid-flight: {count_by(outcomes)}; vendor calls {vendor_answers}")
    assert all(o.elapsed_s < DEADLINE_S + 5 for o in outcomes), [o.elapsed_s for o in outcomes]
    assert all(o.answered or o.cleanly_refused for o in outcomes), count_by(outcomes)
    assert not [o for o in outcomes if _vendor_blamed(o)], count_by(outcomes)
    # The vendor had every request before Redis died: every caller gets its answer.
    assert vendor_answers == IN_FLIGHT
    assert all(o.answered for o in outcomes), count_by(outcomes)

    request_ids = [o.request_id for o in outcomes if o.request_id]
    assert len(set(request_ids)) == IN_FLIGHT
    rows = await metering.wait_all_ok_async(request_ids, timeout_s=60.0)
    ok_rows = {rid: [r for r in rows[rid] if r["status"] == "ok"] for rid in request_ids}
    assert {rid: len(found) for rid, found in ok_rows.items() if len(found) != 1} == {}
    assert sum(len(found) for found in ok_rows.values()) == vendor_answers


async def test_the_first_requests_after_a_redis_restart_succeed(
    full_stack: RunningStack,
) -> None:
    run = uuid.uuid4().hex
    with restored(full_stack):
        async with ingress_client(full_stack) as http:
            # Fill every service's connection pool, so the restart leaves stale connections.
            warm = [post_chat(http, chat_body(f"warm {run} #{i}")) for i in range(20)]
            assert all(o.answered for o in await asyncio.gather(*warm))
            await kill(full_stack, "redis")
            await restart(full_stack, "redis")
            bodies = [chat_body(f"after restart {run} #{i}") for i in range(AFTER_RESTART)]
            outcomes = await asyncio.gather(*(post_chat(http, body) for body in bodies))
            streamed = await post_chat(http, chat_body(f"stream {run}", stream=True))

    print(f"\nrequests right after a redis restart: {count_by(outcomes)}")
    assert not [o for o in outcomes if _vendor_blamed(o)], count_by(outcomes)
    assert all(o.answered for o in outcomes), count_by(outcomes)
    assert streamed.answered, streamed


async def test_requests_while_redis_is_down_are_refused_at_once_and_cleanly(
    full_stack: RunningStack,
) -> None:
    run = uuid.uuid4().hex
    with restored(full_stack):
        async with ingress_client(full_stack) as http:
            await kill(full_stack, "redis")
            try:
                outcomes = await asyncio.gather(
                    *(post_chat(http, chat_body(f"redis down {run} #{i}")) for i in range(10))
                )
            finally:
                await restart(full_stack, "redis")

    print(f"\nrequests while redis is down: {count_by(outcomes)}")
    assert {o.status for o in outcomes} == {503}, count_by(outcomes)
    assert {o.error_code for o in outcomes} == {"unavailable"}
    assert all(o.retry_after is not None for o in outcomes)
    # Refused on the spot, not after the deadline: nothing was accepted.
    assert all(o.elapsed_s < DEADLINE_S / 2 for o in outcomes), [o.elapsed_s for o in outcomes]
