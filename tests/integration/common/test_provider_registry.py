"""Worker heartbeats and the live-provider copy the router and workers keep, against real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from services.common.provider_registry import (
    Heartbeat,
    LiveProviders,
    ServedProvider,
    replicas,
)

pytestmark = pytest.mark.integration


async def test_a_beating_worker_makes_its_provider_served_and_leaving_unserves_it(
    redis: aioredis.Redis,
) -> None:
    # Providers of their own, so other tests' workers do not count here.
    mine, other = "test-provider-a", "test-provider-b"
    await redis.delete(f"sy:workers:{mine}", f"sy:workers:{other}")
    live = LiveProviders(redis, [mine, other], refresh_s=60, grace_s=0.5)
    await live.start()
    try:
        # Absent, but not for long yet (a Redis restart, a stack starting): still served.
        assert live(mine)
        assert live(other)
        beat = Heartbeat(redis, "w1", {mine: ServedProvider("api.example.com", simulated=False)})
        await beat.start()
        await asyncio.sleep(0.6)
        await live._refresh()
        assert live(mine)
        assert not live(other)  # absent for longer than the grace
        [replica] = await replicas(redis, mine)
        assert (replica.instance_id, replica.vendor_host) == ("w1", "api.example.com")
        await beat.stop()  # a worker that stops takes its heartbeat with it
        assert await replicas(redis, mine) == []
    finally:
        await live.stop()
