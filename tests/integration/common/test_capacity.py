"""``Capacity`` against real Redis: limits that hold under concurrent replicas, the batch lane's
share, leases that free themselves, the adaptive limit, pauses, and token reservations."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from contracts.topics import Lane
from services.common.capacity import (
    DEFAULT_MAX_CONCURRENCY,
    RECOVERY_S,
    AccountLimits,
    Capacity,
    Grant,
    Wait,
)
from services.common.redis_client import connect_redis

pytestmark = pytest.mark.integration

INTERACTIVE, BATCH = Lane.INTERACTIVE, Lane.BATCH


def new_account() -> str:
    return f"test-{uuid.uuid4().hex}"


def capacity(redis: aioredis.Redis, limits: AccountLimits) -> Capacity:
    return Capacity(redis, lambda _account: limits)


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[list[aioredis.Redis]]:
    """Four replicas' clients, built as the services build theirs."""
    made = [connect_redis(redis_url) for _ in range(4)]
    try:
        yield made
    finally:
        for client in made:
            await client.aclose()


def replicas(clients: list[aioredis.Redis], limits: AccountLimits) -> list[Capacity]:
    return [capacity(client, limits) for client in clients]


async def acquire_many(
    replicas: list[Capacity],
    account: str,
    n: int,
    *,
    lane: Lane = INTERACTIVE,
    tokens: int = 10,
    lease_s: float = 60,
) -> tuple[list[Grant], list[Wait]]:
    """``n`` concurrent acquires, spread over the replicas."""
    answers = await asyncio.gather(
        *(
            replicas[i % len(replicas)].acquire(account, lane=lane, tokens=tokens, lease_s=lease_s)
            for i in range(n)
        )
    )
    grants = [a for a in answers if isinstance(a, Grant)]
    waits = [a for a in answers if isinstance(a, Wait)]
    return grants, waits


async def test_concurrent_acquires_never_exceed_the_concurrency_limit(
    clients: list[aioredis.Redis],
) -> None:
    limits = AccountLimits(max_concurrency=10)
    fleet = replicas(clients, limits)
    account = new_account()

    grants, waits = await acquire_many(fleet, account, 200)

    assert len(grants) == 10
    assert {w.reason for w in waits} == {"concurrency"}
    assert all(0.05 <= w.wait_s <= 0.25 for w in waits)
    assert (await fleet[0].view(account)).in_flight == 10

    await asyncio.gather(*(fleet[0].release(g, outcome="error") for g in grants))
    assert (await fleet[0].view(account)).in_flight == 0
    grants, _ = await acquire_many(fleet, account, 200)
    assert len(grants) == 10


async def test_rpm_is_exact_under_concurrency_and_releasing_does_not_refund_it(
    clients: list[aioredis.Redis],
) -> None:
    limits = AccountLimits(rpm=25)
    fleet = replicas(clients, limits)
    account = new_account()

    grants, waits = await acquire_many(fleet, account, 200)

    assert len(grants) == 25
    assert {w.reason for w in waits} == {"rpm"}
    # The oldest admission leaves the 60 s window in a little under a minute.
    assert all(50 < w.wait_s <= 60 for w in waits)
    await asyncio.gather(*(fleet[0].release(g, outcome="ok") for g in grants))
    view = await fleet[0].view(account)
    assert (view.in_flight, view.rpm_used) == (0, 25)
    grants, waits = await acquire_many(fleet, account, 10)
    assert grants == []


async def test_tpm_holds_under_concurrency(clients: list[aioredis.Redis]) -> None:
    limits = AccountLimits(tpm=1000)
    fleet = replicas(clients, limits)
    account = new_account()

    grants, waits = await acquire_many(fleet, account, 200, tokens=30)

    assert len(grants) == 33  # 33 * 30 = 990; one more would pass 1000
    assert {w.reason for w in waits} == {"tpm"}
    assert all(0.05 <= w.wait_s <= 60 for w in waits)
    assert (await fleet[0].view(account)).tpm_used == 990


async def test_the_batch_lane_gets_only_its_share(clients: list[aioredis.Redis]) -> None:
    limits = AccountLimits(max_concurrency=10, batch_share=0.5)
    fleet = replicas(clients, limits)
    account = new_account()

    batch, waits = await acquire_many(fleet, account, 100, lane=BATCH)
    assert len(batch) == 5
    assert {w.reason for w in waits} == {"concurrency"}
    interactive, _ = await acquire_many(fleet, account, 100, lane=INTERACTIVE)
    assert len(interactive) == 5

    # With interactive calls holding more than half, batch gets nothing at all.
    await asyncio.gather(*(fleet[0].release(g, outcome="error") for g in batch))
    assert (await acquire_many(fleet, account, 10, lane=BATCH))[0] == []
    assert len((await acquire_many(fleet, account, 10, lane=INTERACTIVE))[0]) == 5


async def test_the_batch_lane_gets_only_its_share_of_rpm_and_tpm(
    clients: list[aioredis.Redis],
) -> None:
    fleet = replicas(clients, AccountLimits(rpm=20, batch_share=0.25))
    account = new_account()
    batch, waits = await acquire_many(fleet, account, 50, lane=BATCH)
    assert len(batch) == 5
    assert {w.reason for w in waits} == {"rpm"}
    assert len((await acquire_many(fleet, account, 50, lane=INTERACTIVE))[0]) == 15

    fleet = replicas(clients, AccountLimits(tpm=1000, batch_share=0.5))
    account = new_account()
    batch, waits = await acquire_many(fleet, account, 50, lane=BATCH, tokens=100)
    assert len(batch) == 5
    assert {w.reason for w in waits} == {"tpm"}
    assert len((await acquire_many(fleet, account, 50, tokens=100))[0]) == 5


async def test_expired_leases_free_their_slots(redis: aioredis.Redis) -> None:
    # A worker that died holding grants never releases them.
    cap, account = capacity(redis, AccountLimits(max_concurrency=3)), new_account()
    grants, _ = await acquire_many([cap], account, 3, lease_s=0.3)
    assert len(grants) == 3
    refused = await cap.acquire(account, lane=INTERACTIVE, tokens=1, lease_s=60)
    assert isinstance(refused, Wait)
    assert refused.reason == "concurrency"
    assert refused.wait_s <= 0.3

    await asyncio.sleep(0.4)
    assert (await cap.view(account)).in_flight == 0
    assert isinstance(await cap.acquire(account, lane=INTERACTIVE, tokens=1, lease_s=60), Grant)
    # A late release of an expired grant frees nothing it does not hold.
    await cap.release(grants[0], outcome="error")
    assert (await cap.view(account)).in_flight == 1


async def test_a_burst_of_rate_limits_halves_the_limit_once_and_oks_grow_it(
    redis: aioredis.Redis,
) -> None:
    cap, account = capacity(redis, AccountLimits(max_concurrency=64)), new_account()
    assert (await cap.view(account)).limit == 64  # it starts at the top
    grants, _ = await acquire_many([cap], account, 40)

    # The vendor refused at 40 in flight: half of that, once for the whole burst.
    await asyncio.gather(*(cap.release(g, outcome="rate_limited") for g in grants[:20]))
    assert (await cap.view(account)).limit == 20
    await cap.release(grants[20], outcome="error")
    assert (await cap.view(account)).limit == 20

    await asyncio.sleep(1.05)
    # 19 in flight now (this one included), below the limit of 20: half of 19.
    await cap.release(grants[21], outcome="rate_limited")
    assert (await cap.view(account)).limit == 9.5

    # About one more per round of calls: ten oks at a limit near 10 add a little under 1.
    await asyncio.gather(*(cap.release(g, outcome="ok") for g in grants[22:32]))
    assert 10.4 < (await cap.view(account)).limit < 10.6


async def test_a_rate_limit_below_the_limit_halves_what_was_in_use(
    redis: aioredis.Redis,
) -> None:
    cap, account = capacity(redis, AccountLimits(max_concurrency=512)), new_account()
    grants, _ = await acquire_many([cap], account, 8)
    await cap.release(grants[0], outcome="rate_limited")
    assert (await cap.view(account)).limit == 4


async def test_the_adaptive_limit_bounds_concurrency_within_its_clamp(
    redis: aioredis.Redis,
) -> None:
    cap, account = (
        capacity(redis, AccountLimits(max_concurrency=4, min_concurrency=3)),
        new_account(),
    )
    grant = await cap.acquire(account, lane=INTERACTIVE, tokens=1, lease_s=60)
    assert isinstance(grant, Grant)
    await cap.release(grant, outcome="rate_limited")
    assert (await cap.view(account)).limit == 3  # half of 4, but never below the minimum
    grants, _ = await acquire_many([cap], account, 10)
    assert len(grants) == 3
    await asyncio.gather(*(cap.release(g, outcome="ok") for g in grants))
    assert 3 < (await cap.view(account)).limit <= 4

    # No max_concurrency: the module's ceiling.
    unbounded, account = capacity(redis, AccountLimits()), new_account()
    assert (await unbounded.view(account)).limit == DEFAULT_MAX_CONCURRENCY
    grant = await unbounded.acquire(account, lane=INTERACTIVE, tokens=1, lease_s=60)
    assert isinstance(grant, Grant)
    await unbounded.release(grant, outcome="ok")
    assert (await unbounded.view(account)).limit == DEFAULT_MAX_CONCURRENCY


async def test_a_reloaded_configuration_applies_at_once(redis: aioredis.Redis) -> None:
    limits = {"now": AccountLimits(max_concurrency=10)}
    cap, account = Capacity(redis, lambda _account: limits["now"]), new_account()
    grants, _ = await acquire_many([cap], account, 4)
    assert len(grants) == 4

    limits["now"] = AccountLimits(max_concurrency=5)
    assert (await cap.view(account)).limit == 5
    assert len((await acquire_many([cap], account, 10))[0]) == 1


async def test_retry_after_pauses_every_replica_and_never_shortens_a_pause(
    redis: aioredis.Redis,
) -> None:
    limits = AccountLimits(max_concurrency=10)
    one, other, account = capacity(redis, limits), capacity(redis, limits), new_account()
    grant = await one.acquire(account, lane=INTERACTIVE, tokens=1, lease_s=60)
    assert isinstance(grant, Grant)

    await one.release(grant, outcome="rate_limited", retry_after_s=0.6)

    paused = await other.acquire(account, lane=INTERACTIVE, tokens=1, lease_s=60)
    assert isinstance(paused, Wait)
    assert paused.reason == "paused"
    assert 0.3 < paused.wait_s <= 0.6
    assert (await other.view(account)).paused_until_ms is not None
    await asyncio.sleep(0.7)
    assert isinstance(await other.acquire(account, lane=INTERACTIVE, tokens=1, lease_s=60), Grant)
    assert (await other.view(account)).paused_until_ms is None

    await one.pause(account, 30)
    assert isinstance(await one.acquire(account, lane=BATCH, tokens=1, lease_s=60), Wait)
    await one.pause(account, 1)
    await one.release(
        Grant(account=account, lease_id="gone", reserved_tokens=0, bucket_s=0),
        outcome="rate_limited",
        retry_after_s=0.1,
    )
    still = await other.acquire(account, lane=INTERACTIVE, tokens=1, lease_s=60)
    assert isinstance(still, Wait)
    assert still.reason == "paused"
    assert still.wait_s > 25
    assert 0 < await redis.pttl(f"sy:cap:pause:{account}") <= 30_000


async def test_tokens_are_reserved_and_corrected_to_what_was_used(redis: aioredis.Redis) -> None:
    cap, account = capacity(redis, AccountLimits(tpm=1000)), new_account()
    first = await cap.acquire(account, lane=INTERACTIVE, tokens=600, lease_s=60)
    assert isinstance(first, Grant)
    assert first.reserved_tokens == 600
    refused = await cap.acquire(account, lane=INTERACTIVE, tokens=600, lease_s=60)
    assert isinstance(refused, Wait)
    assert refused.reason == "tpm"
    assert 50 < refused.wait_s <= 60  # when the reservation leaves the window
    assert (await cap.view(account)).tpm_used == 600

    await cap.release(first, outcome="ok", actual_tokens=100)
    assert (await cap.view(account)).tpm_used == 100
    second = await cap.acquire(account, lane=INTERACTIVE, tokens=600, lease_s=60)
    assert isinstance(second, Grant)
    assert (await cap.view(account)).tpm_used == 700

    # A call that used more than it reserved is charged the difference.
    await cap.release(second, outcome="ok", actual_tokens=900)
    assert (await cap.view(account)).tpm_used == 1000
    assert isinstance(await cap.acquire(account, lane=INTERACTIVE, tokens=1, lease_s=60), Wait)


async def test_a_call_larger_than_the_whole_tpm_budget_goes_alone(redis: aioredis.Redis) -> None:
    cap, account = capacity(redis, AccountLimits(tpm=100)), new_account()
    assert isinstance(await cap.acquire(account, lane=INTERACTIVE, tokens=500, lease_s=60), Grant)
    refused = await cap.acquire(account, lane=INTERACTIVE, tokens=1, lease_s=60)
    assert isinstance(refused, Wait)
    assert refused.reason == "tpm"


async def test_checks_run_in_order_and_a_refusal_records_nothing(redis: aioredis.Redis) -> None:
    limits = AccountLimits(rpm=1, tpm=100, max_concurrency=5)
    cap, account = capacity(redis, limits), new_account()
    assert isinstance(await cap.acquire(account, lane=INTERACTIVE, tokens=50, lease_s=60), Grant)

    refused = await cap.acquire(account, lane=INTERACTIVE, tokens=80, lease_s=60)
    assert isinstance(refused, Wait)
    assert refused.reason == "rpm"  # tpm would refuse too; rpm is asked first
    view = await cap.view(account)
    assert (view.in_flight, view.rpm_used, view.tpm_used) == (1, 1, 50)


async def test_every_key_it_writes_expires(redis: aioredis.Redis) -> None:
    cap, account = capacity(redis, AccountLimits(rpm=10, tpm=1000)), new_account()
    grant = await cap.acquire(account, lane=INTERACTIVE, tokens=10, lease_s=5)
    assert isinstance(grant, Grant)
    assert 0 < await redis.pttl(f"sy:cap:lease:{account}") <= 6_000
    for kind in ("rpm", "tpm"):
        assert 0 < await redis.pttl(f"sy:cap:{kind}:{account}") <= 61_000, kind

    await cap.release(grant, outcome="ok", retry_after_s=2)
    assert 0 < await redis.pttl(f"sy:cap:pause:{account}") <= 2_000
    assert await redis.pttl(f"sy:cap:aimd:{account}") > 0


async def test_renewed_leases_outlive_their_first_term_and_others_lapse(
    redis: aioredis.Redis,
) -> None:
    cap, account = capacity(redis, AccountLimits(max_concurrency=10)), new_account()
    kept = await cap.acquire(account, lane=INTERACTIVE, tokens=1, lease_s=0.5)
    lapsed = await cap.acquire(account, lane=INTERACTIVE, tokens=1, lease_s=0.5)
    assert isinstance(kept, Grant)
    assert isinstance(lapsed, Grant)
    await cap.renew([kept], lease_s=5)
    await asyncio.sleep(0.8)
    assert (await cap.view(account)).in_flight == 1
    # A grant released meanwhile is not brought back by a late renewal.
    await cap.release(kept, outcome="ok")
    await cap.renew([kept], lease_s=5)
    assert (await cap.view(account)).in_flight == 0


async def test_a_calm_spell_doubles_a_cut_limit_back_towards_its_ceiling(
    redis: aioredis.Redis,
) -> None:
    cap, account = capacity(redis, AccountLimits(max_concurrency=64)), new_account()
    grants, _ = await acquire_many([cap], account, 4)
    await cap.release(grants[0], outcome="rate_limited")
    assert (await cap.view(account)).limit == 2  # half of the 4 in use
    await asyncio.sleep(RECOVERY_S + 0.2)
    assert (await cap.view(account)).limit == 4
    await cap.release(grants[1], outcome="ok")  # growth goes on from the recovered value
    assert 4.2 < (await cap.view(account)).limit < 4.3


async def test_renewals_keep_the_lease_set_when_nothing_new_is_admitted(
    redis: aioredis.Redis,
) -> None:
    """A saturated account admits nothing new; renewals alone must keep its leases."""
    cap, account = capacity(redis, AccountLimits(max_concurrency=1)), new_account()
    grant = await cap.acquire(account, lane=INTERACTIVE, tokens=1, lease_s=0.3)
    assert isinstance(grant, Grant)
    for _ in range(7):  # 2.1 s: past the set's first TTL (the lease + 1 s)
        await cap.renew([grant], lease_s=0.5)
        await asyncio.sleep(0.3)
    assert (await cap.view(account)).in_flight == 1
    assert isinstance(await cap.acquire(account, lane=INTERACTIVE, tokens=1, lease_s=1), Wait)
