"""``Circuits`` and ``CircuitSnapshot`` against real Redis: the breaker's transitions, probes
shared by concurrent replicas, leases that free themselves, and a snapshot that outlives Redis
going away."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
import redis.asyncio as aioredis

from services.common.circuits import (
    Admission,
    CircuitPolicy,
    Circuits,
    CircuitSnapshot,
    CircuitState,
)
from services.common.redis_client import connect_redis
from tests.integration.common.polling import eventually
from tests.integration.common.redis_outage import RedisOutage

pytestmark = pytest.mark.integration

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


def new_key() -> str:
    return f"test/{uuid.uuid4().hex}"


def circuits(redis: aioredis.Redis, policy: CircuitPolicy) -> Circuits:
    return Circuits(redis, lambda _key: policy)


async def open_circuit(breaker: Circuits, key: str, policy: CircuitPolicy) -> None:
    for _ in range(policy.failures):
        await breaker.record(key, ok=False, probe=False)
    assert (await breaker.views([key]))[key].state is OPEN


async def wait_out_cooldown(policy: CircuitPolicy) -> None:
    await asyncio.sleep(policy.cooldown_s + 0.1)


async def test_it_opens_at_exactly_the_nth_failure_in_the_window(redis: aioredis.Redis) -> None:
    policy = CircuitPolicy(failures=3, window_s=30, cooldown_s=10, probes=1)
    breaker, key = circuits(redis, policy), new_key()

    assert await breaker.record(key, ok=False, probe=False) is CLOSED
    assert await breaker.record(key, ok=False, probe=False) is CLOSED
    # Successes in between do not wipe failures out: the window does.
    assert await breaker.record(key, ok=True, probe=False) is CLOSED
    assert await breaker.admit(key) == Admission(allowed=True, probe=False, retry_at_ms=None)
    assert (await breaker.views([key]))[key].recent_failures == 2

    assert await breaker.record(key, ok=False, probe=False) is OPEN
    view = (await breaker.views([key]))[key]
    assert view.state is OPEN
    assert view.recent_failures == 3
    assert view.opened_at_ms is not None
    assert view.retry_at_ms == view.opened_at_ms + 10_000
    admission = await breaker.admit(key)
    assert admission == Admission(allowed=False, probe=False, retry_at_ms=view.retry_at_ms)


async def test_concurrent_failures_open_it_once(redis: aioredis.Redis) -> None:
    policy = CircuitPolicy(failures=5, window_s=30, cooldown_s=10)
    replicas = [circuits(redis, policy) for _ in range(4)]
    key = new_key()

    states = await asyncio.gather(
        *(replicas[i % 4].record(key, ok=False, probe=False) for i in range(40))
    )

    # The fifth failure opened it; the rest found it open and changed nothing.
    assert states.count(CLOSED) == 4
    assert states.count(OPEN) == 36
    first_view = (await replicas[0].views([key]))[key]
    await replicas[1].record(key, ok=False, probe=False)
    assert (await replicas[0].views([key]))[key] == first_view


async def test_failures_outside_the_window_do_not_count(redis: aioredis.Redis) -> None:
    policy = CircuitPolicy(failures=2, window_s=0.5, cooldown_s=10)
    breaker, key = circuits(redis, policy), new_key()

    assert await breaker.record(key, ok=False, probe=False) is CLOSED
    await asyncio.sleep(0.6)
    assert (await breaker.views([key]))[key].recent_failures == 0
    assert await breaker.record(key, ok=False, probe=False) is CLOSED
    assert await breaker.record(key, ok=False, probe=False) is OPEN


async def test_open_refuses_until_the_cooldown_ends_then_lets_a_probe_through(
    redis: aioredis.Redis,
) -> None:
    policy = CircuitPolicy(failures=1, window_s=10, cooldown_s=0.5, probes=1)
    breaker, key = circuits(redis, policy), new_key()
    await open_circuit(breaker, key, policy)

    refused = await breaker.admit(key)
    assert not refused.allowed
    assert refused.retry_at_ms is not None

    await wait_out_cooldown(policy)
    assert (await breaker.views([key]))[key].state is HALF_OPEN
    assert await breaker.admit(key) == Admission(allowed=True, probe=True, retry_at_ms=None)


async def test_half_open_lets_at_most_probes_through_at_a_time(redis: aioredis.Redis) -> None:
    policy = CircuitPolicy(failures=1, window_s=10, cooldown_s=0.5, probes=2)
    replicas = [circuits(redis, policy) for _ in range(5)]
    key = new_key()
    await open_circuit(replicas[0], key, policy)
    await wait_out_cooldown(policy)

    admissions = await asyncio.gather(*(replicas[i % 5].admit(key) for i in range(100)))

    allowed = [a for a in admissions if a.allowed]
    assert len(allowed) == 2
    assert all(a.probe for a in allowed)
    # The refused learn when a probe slot is free at the latest: the probes' leases' end.
    assert all(a.retry_at_ms is not None for a in admissions if not a.allowed)

    # One probe succeeds: still half-open, and its slot is free for another probe.
    assert await replicas[0].record(key, ok=True, probe=True) is HALF_OPEN
    assert await replicas[1].admit(key) == Admission(allowed=True, probe=True, retry_at_ms=None)
    assert not (await replicas[2].admit(key)).allowed


async def test_probe_successes_close_it(redis: aioredis.Redis) -> None:
    policy = CircuitPolicy(failures=1, window_s=10, cooldown_s=0.5, probes=2)
    breaker, key = circuits(redis, policy), new_key()
    await open_circuit(breaker, key, policy)
    await wait_out_cooldown(policy)
    assert (await breaker.admit(key)).probe
    assert (await breaker.admit(key)).probe

    assert await breaker.record(key, ok=True, probe=True) is HALF_OPEN
    assert await breaker.record(key, ok=True, probe=True) is CLOSED

    assert await breaker.admit(key) == Admission(allowed=True, probe=False, retry_at_ms=None)
    view = (await breaker.views([key]))[key]
    assert (view.state, view.recent_failures, view.opened_at_ms) == (CLOSED, 0, None)
    assert key not in await breaker.views()
    # A closed circuit leaves nothing behind.
    assert await redis.exists(f"sy:cb:s:{key}", f"sy:cb:f:{key}", f"sy:cb:p:{key}") == 0


async def test_a_probe_failure_opens_it_for_another_cooldown(redis: aioredis.Redis) -> None:
    policy = CircuitPolicy(failures=1, window_s=10, cooldown_s=0.5, probes=2)
    breaker, key = circuits(redis, policy), new_key()
    await open_circuit(breaker, key, policy)
    first = (await breaker.views([key]))[key]
    await wait_out_cooldown(policy)
    assert (await breaker.admit(key)).probe
    assert (await breaker.admit(key)).probe

    assert await breaker.record(key, ok=False, probe=True) is OPEN
    again = (await breaker.views([key]))[key]
    assert again.state is OPEN
    assert first.retry_at_ms is not None
    assert again.retry_at_ms is not None
    assert again.retry_at_ms > first.retry_at_ms
    assert not (await breaker.admit(key)).allowed
    # The other probe, finishing late, belongs to the previous half-open spell.
    assert await breaker.record(key, ok=True, probe=True) is OPEN
    assert (await breaker.views([key]))[key] == again


async def test_a_probe_nobody_records_frees_its_slot_after_its_lease(
    redis: aioredis.Redis,
) -> None:
    # The lease is the cooldown: a worker that died mid-probe must not wedge the circuit.
    policy = CircuitPolicy(failures=1, window_s=10, cooldown_s=0.5, probes=1)
    breaker, key = circuits(redis, policy), new_key()
    await open_circuit(breaker, key, policy)
    await wait_out_cooldown(policy)
    assert (await breaker.admit(key)).probe
    refused = await breaker.admit(key)
    assert not refused.allowed

    await asyncio.sleep(0.6)
    assert await breaker.admit(key) == Admission(allowed=True, probe=True, retry_at_ms=None)


async def test_views_lists_every_circuit_not_closed_and_reset_closes_one(
    redis: aioredis.Redis,
) -> None:
    policy = CircuitPolicy(failures=1, window_s=10, cooldown_s=0.5, probes=1)
    breaker = circuits(redis, policy)
    opened, probed, closed = new_key(), new_key(), new_key()
    await open_circuit(breaker, probed, policy)
    await wait_out_cooldown(policy)
    assert (await breaker.admit(probed)).probe
    await open_circuit(breaker, opened, policy)

    listed = await breaker.views()
    assert listed[opened].state is OPEN
    assert listed[probed].state is HALF_OPEN
    assert listed[probed].retry_at_ms is None
    assert closed not in listed

    await breaker.reset(opened)
    assert opened not in await breaker.views()
    assert await breaker.admit(opened) == Admission(allowed=True, probe=False, retry_at_ms=None)


async def test_every_key_it_writes_expires(redis: aioredis.Redis) -> None:
    policy = CircuitPolicy(failures=2, window_s=5, cooldown_s=5, probes=1)
    breaker, key = circuits(redis, policy), new_key()
    await breaker.record(key, ok=False, probe=False)
    assert 0 < await redis.pttl(f"sy:cb:f:{key}") <= 6_000

    await breaker.record(key, ok=False, probe=False)
    for name in (f"sy:cb:s:{key}", f"sy:cb:f:{key}", "sy:cb:index"):
        assert await redis.pttl(name) > 0, name


async def test_a_flushed_script_cache_is_invisible_to_callers(redis: aioredis.Redis) -> None:
    # What a restarted Redis looks like to a client: its scripts are gone (NOSCRIPT).
    policy = CircuitPolicy(failures=1, window_s=10, cooldown_s=10)
    breaker, key = circuits(redis, policy), new_key()
    await redis.script_flush()

    assert await breaker.record(key, ok=False, probe=False) is OPEN
    assert not (await breaker.admit(key)).allowed


async def test_the_snapshot_follows_redis_and_the_cooldown(redis: aioredis.Redis) -> None:
    policy = CircuitPolicy(failures=1, window_s=10, cooldown_s=1.0, probes=1)
    breaker, key = circuits(redis, policy), new_key()
    snapshot = CircuitSnapshot(breaker, refresh_s=0.05)
    await snapshot.start()
    try:
        assert snapshot.state(key) is CLOSED
        assert snapshot.blocked(key) is None

        await open_circuit(breaker, key, policy)
        retry_at = (await breaker.views([key]))[key].retry_at_ms
        await eventually(lambda: snapshot.blocked(key) == retry_at, "the snapshot sees it open")
        assert snapshot.state(key) is OPEN
        # The cooldown ends by the snapshot's estimate of the server's clock, with no change
        # in Redis (nobody asked to be admitted yet).
        await eventually(lambda: snapshot.state(key) is HALF_OPEN, "the cooldown ends")
        assert snapshot.blocked(key) is None

        await breaker.reset(key)
        await eventually(lambda: snapshot.state(key) is CLOSED, "the snapshot sees it closed")
    finally:
        await snapshot.stop()


async def test_the_snapshot_outlives_redis_going_away(
    redis: aioredis.Redis, outage: RedisOutage, caplog: pytest.LogCaptureFixture
) -> None:
    policy = CircuitPolicy(failures=1, window_s=10, cooldown_s=60, probes=1)
    direct, key = circuits(redis, policy), new_key()
    proxied_redis = connect_redis(outage.url)
    snapshot = CircuitSnapshot(circuits(proxied_redis, policy), refresh_s=0.05)
    caplog.set_level(logging.WARNING, logger="services.common.circuits")
    try:
        await outage.cut()
        await snapshot.start()  # Redis is away: no copy yet, and no error either
        assert snapshot.state(key) is CLOSED

        await outage.restore()
        await open_circuit(direct, key, policy)
        retry_at = (await direct.views([key]))[key].retry_at_ms
        await eventually(lambda: snapshot.blocked(key) == retry_at, "the snapshot sees it open")

        await outage.cut()
        await asyncio.sleep(0.5)  # many refreshes fail meanwhile
        assert snapshot.blocked(key) == retry_at  # the last copy holds

        await direct.reset(key)
        await outage.restore()
        await eventually(lambda: snapshot.state(key) is CLOSED, "the refresher carried on")
    finally:
        await snapshot.stop()
        await proxied_redis.aclose()

    warnings = [r for r in caplog.records if r.name == "services.common.circuits"]
    assert len(warnings) == 2  # once per outage, not once per failed refresh
