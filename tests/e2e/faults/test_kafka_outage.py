"""Kafka dies and comes back (issue item 5).

What must hold: every health endpoint reports Kafka's real state within seconds; a request that
cannot be published gets a prompt 503 with ``retry-after`` (never a hang until the broker is
back); a request accepted before the outage is answered within its deadline, and its usage
reaches ClickHouse once the broker returns; and the stack serves again by itself afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
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
)

pytestmark = pytest.mark.e2e

IN_FLIGHT = 20
VENDOR_TTFT_MS = 3000
DURING = 10
# Bounds on waiting for the stack to notice, never timing assertions.
NOTICE_S = 20.0
RECOVER_S = 120.0


async def _kafka_health(http: httpx.AsyncClient, url: str) -> bool | None:
    """What a /healthz says of Kafka, or None when the service does not answer."""
    try:
        response = await http.get(url)
    except httpx.HTTPError:
        return None
    parts = response.json().get("parts", {})
    kafka = parts.get("kafka")
    return kafka if isinstance(kafka, bool) else None


async def _wait_for_health(http: httpx.AsyncClient, urls: list[str], *, kafka: bool) -> None:
    deadline = time.monotonic() + NOTICE_S
    while True:
        seen = [await _kafka_health(http, url) for url in urls]
        if all(state is kafka for state in seen):
            return
        assert time.monotonic() < deadline, dict(zip(urls, seen, strict=True))
        await asyncio.sleep(0.25)


async def _until_served(http: httpx.AsyncClient, run: str) -> Outcome:
    deadline = time.monotonic() + RECOVER_S
    while True:
        outcome = await post_chat(http, chat_body(f"after kafka {run} {time.monotonic()}"))
        if outcome.answered or time.monotonic() > deadline:
            return outcome
        await asyncio.sleep(1.0)


async def test_a_kafka_outage_is_reported_refused_cleanly_and_survived(
    full_stack: RunningStack, metering: Metering
) -> None:
    layout = full_stack.layout
    health_urls = [
        f"http://127.0.0.1:{layout.ingress_port}/healthz",
        f"http://127.0.0.1:{layout.router_port}/healthz",
        f"http://127.0.0.1:{layout.worker_port(0)}/healthz",
    ]
    run = uuid.uuid4().hex
    with restored(full_stack):
        async with (
            ingress_client(full_stack) as http,
            httpx.AsyncClient(timeout=10.0, trust_env=False) as probe,
        ):
            await _wait_for_health(probe, health_urls, kafka=True)
            accepted = [
                asyncio.create_task(
                    post_chat(
                        http, chat_body(f"before kafka dies {run} #{i} [sim:ttft={VENDOR_TTFT_MS}]")
                    )
                )
                for i in range(IN_FLIGHT)
            ]
            await asyncio.sleep(1.0)  # published, planned, and waiting at the vendor
            await kill(full_stack, "kafka")
            try:
                await _wait_for_health(probe, health_urls, kafka=False)
                during = await asyncio.gather(
                    *(post_chat(http, chat_body(f"kafka down {run} #{i}")) for i in range(DURING))
                )
                answered_in_outage = await asyncio.gather(*accepted)
            finally:
                await restart(full_stack, "kafka")
            await _wait_for_health(probe, health_urls, kafka=True)
            after = await _until_served(http, run)

    print(
        f"\nkafka outage: accepted before {count_by(answered_in_outage)}, "
        f"sent during {count_by(during)}, first after: {after.status}"
    )
    assert {o.status for o in during} == {503}, count_by(during)
    assert {o.error_code for o in during} == {"unavailable"}
    assert all(o.retry_after is not None for o in during)
    assert all(o.elapsed_s < DEADLINE_S / 2 for o in during), [o.elapsed_s for o in during]

    # Replies travel through Redis, so the vendor's answers reach their callers in the outage.
    assert all(o.answered for o in answered_in_outage), count_by(answered_in_outage)
    assert after.answered, after

    # Their usage waited for the broker and arrived once: one ok row each.
    request_ids = [o.request_id for o in answered_in_outage if o.request_id]
    assert len(request_ids) == IN_FLIGHT
    rows = await metering.wait_all_ok_async(request_ids, timeout_s=RECOVER_S)
    ok_counts = {rid: sum(r["status"] == "ok" for r in rows[rid]) for rid in request_ids}
    assert {rid: n for rid, n in ok_counts.items() if n != 1} == {}
