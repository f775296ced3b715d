"""``ObservedLatency`` against real Redis: what workers noted becomes the figure the ranking
reads, only once enough calls were seen, and a Redis outage keeps the last snapshot."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from services.common.provider_stats import AttemptStats
from services.common.redis_client import connect_redis
from services.router.latency import MIN_SAMPLES, ObservedLatency
from tests.integration.common.redis_outage import RedisOutage

pytestmark = pytest.mark.integration


async def note(redis: aioredis.Redis, key: str, count: int, latency_ms: int) -> None:
    stats = AttemptStats(redis, flush_s=60)
    await stats.start()
    for _ in range(count):
        stats.note(key, ok=True, latency_ms=latency_ms)
    await stats.stop()  # flushes


async def test_enough_observed_calls_give_a_latency(redis: aioredis.Redis) -> None:
    seen, few = f"test/{uuid.uuid4().hex}", f"test/{uuid.uuid4().hex}"
    await note(redis, seen, MIN_SAMPLES, 40)
    await note(redis, few, MIN_SAMPLES - 1, 40)
    latency = ObservedLatency(redis)
    await latency.refresh()
    observed = latency.latency_ms(seen)
    assert observed is not None
    assert 25 <= observed <= 50  # within the 25..50 ms bucket
    assert latency.latency_ms(few) is None


async def test_a_redis_outage_keeps_the_last_snapshot(
    redis: aioredis.Redis, redis_url: str
) -> None:
    key = f"test/{uuid.uuid4().hex}"
    await note(redis, key, MIN_SAMPLES, 400)
    proxy = RedisOutage(redis_url)
    await proxy.restore()
    through_proxy = connect_redis(proxy.url)
    try:
        latency = ObservedLatency(through_proxy)
        await latency.refresh()
        before = latency.latency_ms(key)
        assert before is not None
        await proxy.cut()
        await latency.refresh()  # fails, and says so in the log
        assert latency.latency_ms(key) == before
    finally:
        await proxy.cut()
        await through_proxy.aclose()
