"""``AttemptStats`` and ``read_stats`` against real Redis: notes flushed by replicas and read back
merged, with plausible percentiles, and notes kept while Redis is away."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import pytest
import redis.asyncio as aioredis

from services.common.provider_stats import (
    BOUNDS_MS,
    STATS_TTL_S,
    AttemptStats,
    StatsView,
    read_stats,
)
from services.common.redis_client import connect_redis
from tests.integration.common.polling import eventually
from tests.integration.common.redis_outage import RedisOutage

pytestmark = pytest.mark.integration


def new_key() -> str:
    return f"test/{uuid.uuid4().hex}"


def minute_now() -> int:
    return int(time.time() // 60)


async def test_notes_are_flushed_and_read_back_with_plausible_percentiles(
    redis: aioredis.Redis,
) -> None:
    stats, key = AttemptStats(redis, flush_s=60), new_key()
    await stats.start()
    for _ in range(90):
        stats.note(key, ok=True, latency_ms=40)
    for _ in range(9):
        stats.note(key, ok=True, latency_ms=400)
    stats.note(key, ok=True, latency_ms=4000)
    for _ in range(5):
        stats.note(key, ok=False, latency_ms=3)  # failures count as errors, not as latency
    await stats.stop()  # flushes what is left

    view = (await read_stats(redis, keys=[key]))[key]
    assert (view.requests, view.errors) == (105, 5)
    assert view.error_rate == pytest.approx(5 / 105)
    assert view.p50_ms is not None
    assert view.p95_ms is not None
    assert view.p99_ms is not None
    assert 25 < view.p50_ms <= 50  # 90 % of the successes took 40 ms
    assert 250 < view.p95_ms <= 500  # the 400 ms ones
    assert 250 < view.p99_ms <= 500
    assert view.p50_ms <= view.p95_ms <= view.p99_ms


async def test_replicas_merge_and_every_noted_key_is_listed(redis: aioredis.Redis) -> None:
    one, other = AttemptStats(redis), AttemptStats(redis)
    fast, slow, silent = new_key(), new_key(), new_key()
    for replica in (one, other):
        await replica.start()
        for _ in range(10):
            replica.note(fast, ok=True, latency_ms=7)
        replica.note(slow, ok=False, latency_ms=30_000)
        replica.note(slow, ok=True, latency_ms=90_000)
    await one.stop()
    await other.stop()

    every = await read_stats(redis)
    assert every[fast].requests == 20
    p99 = every[fast].p99_ms
    assert p99 is not None
    assert 5 < p99 <= 10
    assert (every[slow].requests, every[slow].errors) == (4, 2)
    # Slower than the top bound: reported as the top bound.
    assert every[slow].p50_ms == BOUNDS_MS[-1]
    assert silent not in every

    named = await read_stats(redis, keys=[fast, silent])
    assert named[fast] == every[fast]
    assert named[silent] == StatsView(
        requests=0, errors=0, error_rate=0.0, p50_ms=None, p95_ms=None, p99_ms=None
    )


async def test_the_background_task_flushes_every_flush_s(redis: aioredis.Redis) -> None:
    stats, key = AttemptStats(redis, flush_s=0.05), new_key()
    await stats.start()
    try:
        stats.note(key, ok=True, latency_ms=120)

        async def flushed() -> bool:
            return (await read_stats(redis, keys=[key]))[key].requests == 1

        await eventually(flushed, "the note reaches Redis without stop()")
        assert 0 < await redis.ttl(f"sy:stats:{minute_now()}:{key}") <= STATS_TTL_S
        assert 0 < await redis.ttl(f"sy:stats:keys:{minute_now()}") <= STATS_TTL_S
    finally:
        await stats.stop()


async def test_only_the_last_minutes_are_read(redis: aioredis.Redis) -> None:
    key = new_key()
    # Three minutes ago, as a replica would have flushed it (the layout the module documents).
    old = minute_now() - 3
    await redis.hset(f"sy:stats:{old}:{key}", mapping={"requests": 4, "errors": 4})
    await redis.expire(f"sy:stats:{old}:{key}", STATS_TTL_S)
    await redis.sadd(f"sy:stats:keys:{old}", key)
    await redis.expire(f"sy:stats:keys:{old}", STATS_TTL_S)
    stats = AttemptStats(redis)
    stats.note(key, ok=True, latency_ms=20)
    await stats.stop()

    assert (await read_stats(redis, minutes=2, keys=[key]))[key].requests == 1
    recent = await read_stats(redis, minutes=5)
    assert (recent[key].requests, recent[key].errors) == (5, 4)


async def test_notes_are_kept_while_redis_is_away_and_flushed_once_it_is_back(
    redis: aioredis.Redis, outage: RedisOutage, caplog: pytest.LogCaptureFixture
) -> None:
    proxied_redis = connect_redis(outage.url)
    stats, key = AttemptStats(proxied_redis, flush_s=0.05), new_key()
    caplog.set_level(logging.WARNING, logger="services.common.provider_stats")
    await outage.cut()
    await stats.start()
    try:
        for i in range(30):
            stats.note(key, ok=i % 3 != 0, latency_ms=80)  # the caller never sees Redis
            await asyncio.sleep(0.02)
        assert (await read_stats(redis, keys=[key]))[key].requests == 0

        await outage.restore()

        async def all_flushed() -> bool:
            return (await read_stats(redis, keys=[key]))[key].requests == 30

        await eventually(all_flushed, "the kept notes reach Redis")
        view = (await read_stats(redis, keys=[key]))[key]
        assert view.errors == 10
        assert view.p50_ms is not None
        assert 50 < view.p50_ms <= 100
    finally:
        await stats.stop()
        await proxied_redis.aclose()

    warnings = [r for r in caplog.records if r.name == "services.common.provider_stats"]
    assert len(warnings) == 1  # once for the outage, not once per failed flush
