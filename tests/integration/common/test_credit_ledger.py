"""``CreditLedger`` against real Redis: holds against credit and the monthly spend limit under
concurrent replicas, holds released only once closed and fully settled, expiry, readiness and
rebuilds, and figures exact beyond a double's 2^53."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from services.common.credit import (
    NANOS_PER_USD,
    Charge,
    CreditLedger,
    HoldOutcome,
    HoldResult,
    LedgerSnapshot,
)
from services.common.redis_client import connect_redis

pytestmark = pytest.mark.integration

USD = NANOS_PER_USD
MONTH = "2025-06"
# A database of the test Redis that only this module uses: its tests flush it, and forget_ready
# touches every ledger in it.
_OWN_DB = 7


def new_project() -> str:
    return f"test-{uuid.uuid4().hex}"


def new_request() -> str:
    return uuid.uuid4().hex


async def server_ms(redis: aioredis.Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def ready_ledger(
    redis: aioredis.Redis, *, spent: int = 0, month_spent: int = 0
) -> tuple[CreditLedger, str]:
    ledger, project = CreditLedger(redis), new_project()
    assert await ledger.init(project, spent_nanos=spent, month=MONTH, month_spent_nanos=month_spent)
    return ledger, project


async def hold(
    ledger: CreditLedger,
    project: str,
    amount: int,
    *,
    request_id: str | None = None,
    granted: int | None = None,
    limit: int | None = None,
    expires_at_ms: int = 2**62,
) -> HoldResult:
    return await ledger.hold(
        project,
        request_id or new_request(),
        amount,
        granted_nanos=granted,
        month_limit_nanos=limit,
        month=MONTH,
        expires_at_ms=expires_at_ms,
    )


def charge(project: str, request_id: str, cost: int, month: str = MONTH) -> Charge:
    return Charge(project=project, request_id=request_id, cost_nanos=cost, month=month)


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[list[aioredis.Redis]]:
    """Four replicas' clients, built as the services build theirs."""
    made = [connect_redis(redis_url) for _ in range(4)]
    try:
        yield made
    finally:
        for client in made:
            await client.aclose()


@pytest.fixture
async def own_db(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect_redis(urlsplit(redis_url)._replace(path=f"/{_OWN_DB}").geturl())
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


async def test_a_hold_within_credit_is_held_and_reserves_its_amount(redis: aioredis.Redis) -> None:
    ledger, project = await ready_ledger(redis, spent=3 * USD, month_spent=1 * USD)

    first = await hold(ledger, project, 2 * USD, granted=10 * USD, limit=100 * USD)
    assert first == HoldResult(
        outcome=HoldOutcome.HELD,
        available_nanos=7 * USD,
        month_spent_nanos=1 * USD,
        held_nanos=0,
    )
    second = await hold(ledger, project, 4 * USD, granted=10 * USD)
    assert second.outcome is HoldOutcome.HELD
    assert (second.available_nanos, second.held_nanos) == (5 * USD, 2 * USD)
    assert await ledger.snapshot(project, MONTH) == LedgerSnapshot(
        ready=True, spent_nanos=3 * USD, month_spent_nanos=1 * USD, held_nanos=6 * USD, open_holds=2
    )


async def test_without_a_grant_or_limit_nothing_is_checked(redis: aioredis.Redis) -> None:
    ledger, project = await ready_ledger(redis, spent=10**6 * USD)
    result = await hold(ledger, project, 10**6 * USD)
    assert result.outcome is HoldOutcome.HELD
    assert result.available_nanos is None


async def test_a_hold_beyond_the_balance_is_refused_and_records_nothing(
    redis: aioredis.Redis,
) -> None:
    ledger, project = await ready_ledger(redis, spent=3 * USD)
    assert (await hold(ledger, project, USD, granted=5 * USD)).outcome is HoldOutcome.HELD
    # Exactly the balance left (5 - 3 - 1) still fits; one nano more does not.
    assert (await hold(ledger, project, USD + 1, granted=5 * USD)).outcome is HoldOutcome.NO_CREDIT
    assert (await hold(ledger, project, USD, granted=5 * USD)).outcome is HoldOutcome.HELD

    refused = await hold(ledger, project, 1, granted=5 * USD)
    assert refused == HoldResult(
        outcome=HoldOutcome.NO_CREDIT, available_nanos=0, month_spent_nanos=0, held_nanos=2 * USD
    )
    snapshot = await ledger.snapshot(project, MONTH)
    assert (snapshot.held_nanos, snapshot.open_holds) == (2 * USD, 2)


async def test_an_overdrawn_balance_reads_negative(redis: aioredis.Redis) -> None:
    """Settled costs are what vendors charged, and may pass the grants."""
    ledger, project = await ready_ledger(redis, spent=7 * USD)
    refused = await hold(ledger, project, 1, granted=5 * USD)
    assert refused.outcome is HoldOutcome.NO_CREDIT
    assert refused.available_nanos == -2 * USD


async def test_the_monthly_spend_limit_counts_the_month_and_what_is_held(
    redis: aioredis.Redis,
) -> None:
    ledger, project = await ready_ledger(redis, spent=100 * USD, month_spent=6 * USD)
    assert (await hold(ledger, project, 3 * USD, limit=10 * USD)).outcome is HoldOutcome.HELD
    assert (await hold(ledger, project, USD, limit=10 * USD)).outcome is HoldOutcome.HELD
    over = await hold(ledger, project, 1, limit=10 * USD)
    assert over == HoldResult(
        outcome=HoldOutcome.OVER_SPEND_LIMIT,
        available_nanos=None,
        month_spent_nanos=6 * USD,
        held_nanos=4 * USD,
    )
    # Credit is checked first.
    both = await hold(ledger, project, USD, granted=100 * USD, limit=10 * USD)
    assert both.outcome is HoldOutcome.NO_CREDIT


async def test_figures_beyond_two_to_the_53_stay_exact(redis: aioredis.Redis) -> None:
    """Lua's doubles cannot tell 2^62 from 2^62 - 10: the checks must not use them."""
    granted = 2**62
    ledger, project = await ready_ledger(redis, spent=granted - 10, month_spent=granted - 10)
    assert (await hold(ledger, project, 10, granted=granted)).outcome is HoldOutcome.HELD
    refused = await hold(ledger, project, 1, granted=granted, limit=granted + 1)
    assert refused.outcome is HoldOutcome.NO_CREDIT
    assert refused.available_nanos == 0
    over = await hold(ledger, project, 2, limit=granted + 1)
    assert over.outcome is HoldOutcome.OVER_SPEND_LIMIT
    assert (await hold(ledger, project, 1, limit=granted + 1)).outcome is HoldOutcome.HELD

    await ledger.settle([charge(project, new_request(), 3)])
    snapshot = await ledger.snapshot(project, MONTH)
    assert snapshot.spent_nanos == snapshot.month_spent_nanos == granted - 7
    assert snapshot.held_nanos == 11


async def test_nothing_is_held_before_the_ledger_is_initialised(redis: aioredis.Redis) -> None:
    ledger, project = CreditLedger(redis), new_project()
    result = await hold(ledger, project, USD, granted=10 * USD)
    assert result == HoldResult(
        outcome=HoldOutcome.NOT_READY, available_nanos=None, month_spent_nanos=0, held_nanos=0
    )
    assert await ledger.snapshot(project, MONTH) == LedgerSnapshot(
        ready=False, spent_nanos=0, month_spent_nanos=0, held_nanos=0, open_holds=0
    )


async def test_a_flushed_redis_is_not_ready_and_asks_for_a_rebuild(own_db: aioredis.Redis) -> None:
    ledger, project = await ready_ledger(own_db, spent=USD)
    assert (await hold(ledger, project, USD, granted=10 * USD)).outcome is HoldOutcome.HELD

    await own_db.flushdb()

    assert (await hold(ledger, project, USD, granted=10 * USD)).outcome is HoldOutcome.NOT_READY
    await ledger.request_rebuild(project)
    await ledger.request_rebuild(project)  # every replica that finds it so may ask
    assert await ledger.pending_rebuilds() == [project]
    assert await ledger.pending_rebuilds() == []
    assert await ledger.init(project, spent_nanos=2 * USD, month=MONTH, month_spent_nanos=USD)
    result = await hold(ledger, project, USD, granted=10 * USD)
    assert (result.outcome, result.available_nanos) == (HoldOutcome.HELD, 8 * USD)


async def test_pending_rebuilds_are_taken_at_most_count_at_a_time(own_db: aioredis.Redis) -> None:
    ledger = CreditLedger(own_db)
    projects = {new_project() for _ in range(5)}
    for project in projects:
        await ledger.request_rebuild(project)
    first = await ledger.pending_rebuilds(count=3)
    rest = await ledger.pending_rebuilds(count=3)
    assert (len(first), len(rest)) == (3, 2)
    assert set(first) | set(rest) == projects


async def test_init_happens_once_and_keeps_open_holds(own_db: aioredis.Redis) -> None:
    ledger, project = await ready_ledger(own_db, spent=USD, month_spent=USD)
    assert not await ledger.init(project, spent_nanos=9 * USD, month=MONTH, month_spent_nanos=0)
    assert (await ledger.snapshot(project, MONTH)).spent_nanos == USD

    await hold(ledger, project, 2 * USD)
    assert await ledger.forget_ready() == 1
    assert await ledger.init(project, spent_nanos=5 * USD, month=MONTH, month_spent_nanos=4 * USD)
    assert await ledger.snapshot(project, MONTH) == LedgerSnapshot(
        ready=True, spent_nanos=5 * USD, month_spent_nanos=4 * USD, held_nanos=2 * USD, open_holds=1
    )


async def test_init_forgets_the_figures_of_other_months(redis: aioredis.Redis) -> None:
    ledger, project = await ready_ledger(redis)
    await ledger.settle([charge(project, new_request(), USD, month="2025-05")])
    assert (await ledger.snapshot(project, "2025-05")).month_spent_nanos == USD
    await redis.hdel(f"sy:credit:{{{project}}}", "ready")  # as forget_ready does

    assert await ledger.init(project, spent_nanos=3 * USD, month=MONTH, month_spent_nanos=2 * USD)
    assert (await ledger.snapshot(project, "2025-05")).month_spent_nanos == 0
    assert (await ledger.snapshot(project, MONTH)).month_spent_nanos == 2 * USD


async def test_a_repeated_hold_is_held_once(redis: aioredis.Redis) -> None:
    ledger, project = await ready_ledger(redis)
    request_id = new_request()
    first = await hold(ledger, project, 3 * USD, request_id=request_id, granted=4 * USD)
    again = await hold(ledger, project, 3 * USD, request_id=request_id, granted=4 * USD)
    assert first.outcome is again.outcome is HoldOutcome.HELD
    assert again.held_nanos == 3 * USD
    snapshot = await ledger.snapshot(project, MONTH)
    assert (snapshot.held_nanos, snapshot.open_holds) == (3 * USD, 1)


async def test_settled_then_closed_releases_the_hold_at_the_close(redis: aioredis.Redis) -> None:
    ledger, project = await ready_ledger(redis)
    request_id = new_request()
    await hold(ledger, project, 5 * USD, request_id=request_id)

    await ledger.settle([charge(project, request_id, USD), charge(project, request_id, 2 * USD)])
    # Settled, but the ingress has not said how many attempts there were: still held.
    assert await ledger.snapshot(project, MONTH) == LedgerSnapshot(
        ready=True, spent_nanos=3 * USD, month_spent_nanos=3 * USD, held_nanos=5 * USD, open_holds=1
    )
    await ledger.close(project, request_id, 2)
    assert await ledger.snapshot(project, MONTH) == LedgerSnapshot(
        ready=True, spent_nanos=3 * USD, month_spent_nanos=3 * USD, held_nanos=0, open_holds=0
    )


async def test_closed_then_settled_releases_the_hold_with_the_last_attempt(
    redis: aioredis.Redis,
) -> None:
    ledger, project = await ready_ledger(redis)
    request_id = new_request()
    await hold(ledger, project, 5 * USD, request_id=request_id)

    await ledger.close(project, request_id, 2)
    assert (await ledger.snapshot(project, MONTH)).open_holds == 1
    await ledger.settle([charge(project, request_id, USD)])
    snapshot = await ledger.snapshot(project, MONTH)
    assert (snapshot.spent_nanos, snapshot.held_nanos, snapshot.open_holds) == (USD, 5 * USD, 1)
    await ledger.settle([charge(project, request_id, USD)])
    snapshot = await ledger.snapshot(project, MONTH)
    assert (snapshot.spent_nanos, snapshot.held_nanos, snapshot.open_holds) == (2 * USD, 0, 0)


async def test_the_balance_is_never_free_while_metering_lags(redis: aioredis.Redis) -> None:
    """A closed request's cost is held until settled: the same dollar cannot be held twice."""
    ledger, project = await ready_ledger(redis)
    request_id = new_request()
    await hold(ledger, project, 4 * USD, request_id=request_id, granted=5 * USD)
    await ledger.close(project, request_id, 1)
    assert (await hold(ledger, project, 2 * USD, granted=5 * USD)).outcome is HoldOutcome.NO_CREDIT
    await ledger.settle([charge(project, request_id, 3 * USD)])
    assert (await hold(ledger, project, 2 * USD, granted=5 * USD)).outcome is HoldOutcome.HELD


async def test_a_close_after_zero_attempts_releases_at_once(redis: aioredis.Redis) -> None:
    ledger, project = await ready_ledger(redis)
    request_id = new_request()
    await hold(ledger, project, USD, request_id=request_id)
    await ledger.close(project, request_id, 0)
    assert (await ledger.snapshot(project, MONTH)).open_holds == 0
    await ledger.close(project, request_id, 1)  # no hold any more: nothing to do
    await ledger.close(project, new_request(), 3)
    snapshot = await ledger.snapshot(project, MONTH)
    assert (snapshot.held_nanos, snapshot.open_holds) == (0, 0)


async def test_a_settle_of_a_not_ready_ledger_leaves_spent_alone(own_db: aioredis.Redis) -> None:
    ledger, project = await ready_ledger(own_db, spent=USD, month_spent=USD)
    request_id = new_request()
    await hold(ledger, project, 5 * USD, request_id=request_id)
    await ledger.close(project, request_id, 1)
    await ledger.forget_ready()

    await ledger.settle([charge(project, request_id, 2 * USD)])
    # ClickHouse already has the event: the rebuild counts it. It still counts for the hold.
    assert await ledger.snapshot(project, MONTH) == LedgerSnapshot(
        ready=False, spent_nanos=USD, month_spent_nanos=USD, held_nanos=0, open_holds=0
    )

    never_ready = new_project()
    await ledger.settle([charge(never_ready, new_request(), USD)])
    assert await ledger.snapshot(never_ready, MONTH) == LedgerSnapshot(
        ready=False, spent_nanos=0, month_spent_nanos=0, held_nanos=0, open_holds=0
    )


async def test_an_expired_hold_is_purged_by_the_next_hold(redis: aioredis.Redis) -> None:
    ledger, project = await ready_ledger(redis)
    soon = await server_ms(redis) + 300
    assert (await hold(ledger, project, USD, granted=USD, expires_at_ms=soon)).outcome is (
        HoldOutcome.HELD
    )
    assert (await hold(ledger, project, USD, granted=USD)).outcome is HoldOutcome.NO_CREDIT

    await asyncio.sleep(0.4)
    result = await hold(ledger, project, USD, granted=USD)
    assert result.outcome is HoldOutcome.HELD
    assert (result.available_nanos, result.held_nanos) == (USD, 0)
    snapshot = await ledger.snapshot(project, MONTH)
    assert (snapshot.held_nanos, snapshot.open_holds) == (USD, 1)


async def test_a_closed_hold_outlives_its_deadline_until_it_is_settled(
    redis: aioredis.Redis,
) -> None:
    """Metering lags past the request's deadline: the hold must stay until the cost is in
    spent, or the credit would be free twice."""
    ledger, project = await ready_ledger(redis)
    request = new_request()
    soon = await server_ms(redis) + 300
    held = await hold(ledger, project, USD, granted=USD, expires_at_ms=soon, request_id=request)
    assert held.outcome is HoldOutcome.HELD
    await ledger.close(project, request, 1, cost_nanos=USD // 2)
    await asyncio.sleep(0.4)
    # Past its deadline, closed, not settled: still held (at the known cost).
    assert (await hold(ledger, project, USD, granted=USD)).outcome is HoldOutcome.NO_CREDIT
    snapshot = await ledger.snapshot(project, MONTH)
    assert (snapshot.held_nanos, snapshot.open_holds) == (USD // 2, 1)
    await ledger.settle([charge(project, request, USD // 2)])
    snapshot = await ledger.snapshot(project, MONTH)
    assert (snapshot.spent_nanos, snapshot.held_nanos, snapshot.open_holds) == (USD // 2, 0, 0)


async def test_a_hold_purges_at_most_64_expired_holds(redis: aioredis.Redis) -> None:
    ledger, project = await ready_ledger(redis)
    soon = await server_ms(redis) + 1500  # time for the 100 holds to land before any expires
    await asyncio.gather(*(hold(ledger, project, 1, expires_at_ms=soon) for _ in range(100)))
    assert (await ledger.snapshot(project, MONTH)).open_holds == 100
    await asyncio.sleep((soon - await server_ms(redis)) / 1000 + 0.1)

    await hold(ledger, project, USD)
    snapshot = await ledger.snapshot(project, MONTH)
    assert (snapshot.held_nanos, snapshot.open_holds) == (USD + 36, 37)
    await hold(ledger, project, USD)
    snapshot = await ledger.snapshot(project, MONTH)
    assert (snapshot.held_nanos, snapshot.open_holds) == (2 * USD, 2)


async def test_forget_ready_marks_every_ledger_not_ready(own_db: aioredis.Redis) -> None:
    ledger = CreditLedger(own_db)
    projects = [new_project() for _ in range(1200)]  # more than one SCAN page and HDEL batch
    for start in range(0, len(projects), 200):  # within the client's connection pool
        await asyncio.gather(
            *(
                ledger.init(project, spent_nanos=USD, month=MONTH, month_spent_nanos=0)
                for project in projects[start : start + 200]
            )
        )
    request_id = new_request()
    await hold(ledger, projects[0], USD, request_id=request_id)
    await ledger.request_rebuild(new_project())  # the rebuild set is no ledger
    not_ready = new_project()
    await ledger.settle([charge(not_ready, new_request(), USD)])

    assert await ledger.forget_ready() == len(projects)

    for project in projects[:5]:
        assert (await hold(ledger, project, USD)).outcome is HoldOutcome.NOT_READY
    kept = await ledger.snapshot(projects[0], MONTH)
    assert (kept.ready, kept.spent_nanos, kept.held_nanos, kept.open_holds) == (False, USD, USD, 1)
    assert await ledger.forget_ready() == 0


async def test_concurrent_holds_never_hold_more_than_the_credit(
    clients: list[aioredis.Redis],
) -> None:
    replicas = [CreditLedger(client) for client in clients]
    await replicas[0].init(
        project := new_project(), spent_nanos=0, month=MONTH, month_spent_nanos=0
    )
    granted = 20 * USD

    results = await asyncio.gather(
        *(hold(replicas[i % len(replicas)], project, USD, granted=granted) for i in range(200))
    )

    outcomes = [result.outcome for result in results]
    assert outcomes.count(HoldOutcome.HELD) == 20
    assert outcomes.count(HoldOutcome.NO_CREDIT) == 180
    assert all(
        result.held_nanos + USD <= granted
        for result in results
        if result.outcome is HoldOutcome.HELD
    )
    assert all(r.available_nanos is not None and r.available_nanos >= 0 for r in results)
    snapshot = await replicas[1].snapshot(project, MONTH)
    assert (snapshot.held_nanos, snapshot.open_holds) == (granted, 20)


async def test_concurrent_holds_never_pass_the_spend_limit(clients: list[aioredis.Redis]) -> None:
    replicas = [CreditLedger(client) for client in clients]
    await replicas[0].init(
        project := new_project(), spent_nanos=0, month=MONTH, month_spent_nanos=5 * USD
    )
    results = await asyncio.gather(
        *(hold(replicas[i % len(replicas)], project, USD, limit=25 * USD) for i in range(200))
    )
    outcomes = [result.outcome for result in results]
    assert outcomes.count(HoldOutcome.HELD) == 20
    assert outcomes.count(HoldOutcome.OVER_SPEND_LIMIT) == 180


async def test_projects_are_isolated(redis: aioredis.Redis) -> None:
    ledger, first = await ready_ledger(redis)
    second, unready = new_project(), new_project()
    await ledger.init(second, spent_nanos=USD, month=MONTH, month_spent_nanos=USD)
    request_id = new_request()  # one request id in two projects: two holds
    await hold(ledger, first, 3 * USD, request_id=request_id, granted=3 * USD)
    assert (
        await hold(ledger, second, 2 * USD, request_id=request_id, granted=3 * USD)
    ).outcome is (HoldOutcome.HELD)
    await hold(ledger, unready, USD, request_id=request_id)

    await ledger.settle(
        [
            charge(first, request_id, USD),
            charge(second, request_id, 4 * USD),
            charge(unready, request_id, USD),
        ]
    )
    await ledger.close(first, request_id, 1)

    assert await ledger.snapshot(first, MONTH) == LedgerSnapshot(
        ready=True, spent_nanos=USD, month_spent_nanos=USD, held_nanos=0, open_holds=0
    )
    assert await ledger.snapshot(second, MONTH) == LedgerSnapshot(
        ready=True, spent_nanos=5 * USD, month_spent_nanos=5 * USD, held_nanos=2 * USD, open_holds=1
    )
    assert not (await ledger.snapshot(unready, MONTH)).ready


async def test_every_key_of_a_project_shares_its_hash_slot(redis: aioredis.Redis) -> None:
    ledger, project = await ready_ledger(redis)
    await hold(ledger, project, USD)
    keys = [key.decode() async for key in redis.scan_iter(match=f"sy:credit:{{{project}}}*")]
    assert sorted(keys) == sorted(
        f"sy:credit:{{{project}}}{suffix}" for suffix in ("", ":holds", ":expiry")
    )
    assert len({key_slot(key.encode()) for key in keys}) == 1


async def test_bad_arguments_are_refused_before_redis(redis: aioredis.Redis) -> None:
    ledger = CreditLedger(redis)
    with pytest.raises(ValueError, match="braces"):
        await hold(ledger, "a}b", USD)
    with pytest.raises(ValueError, match="amount_nanos"):
        await hold(ledger, new_project(), -1)
    with pytest.raises(ValueError, match="YYYY-MM"):
        await ledger.snapshot(new_project(), "2025-13")
    with pytest.raises(ValueError, match="attempts"):
        await ledger.close(new_project(), new_request(), -1)
    with pytest.raises(ValueError, match="cost_nanos"):
        await ledger.settle([charge(new_project(), new_request(), 2**63)])
