"""``RequestStore`` against real Redis: the sealing key's life and the done mark."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.asyncio as aioredis

from contracts.sealing import new_key
from services.common import request_state
from services.common.request_state import (
    CLAIM_TTL_S,
    DONE_MARGIN_S,
    HANDED_ON,
    ClaimKeeper,
    RequestState,
    RequestStore,
    claim_key,
)
from tests.integration.common.polling import eventually

pytestmark = pytest.mark.integration


def _in_ms(seconds: int) -> int:
    """An epoch-millisecond deadline ``seconds`` from now."""
    return time.time_ns() // 1_000_000 + seconds * 1000


@pytest.fixture
def store(redis: aioredis.Redis) -> RequestStore:
    return RequestStore(redis)


def new_request_id() -> str:
    return f"test-req-{uuid.uuid4().hex}"


async def test_an_opened_request_holds_its_key_under_a_ttl(
    store: RequestStore, redis: aioredis.Redis
) -> None:
    request_id, key = new_request_id(), new_key()
    await store.open(request_id, key, ttl_s=300)

    assert await store.load(request_id) == RequestState(body_key=key, done=False)
    ttl = await redis.ttl(f"sy:seal:{request_id}")
    assert 0 < ttl <= 300
    assert await redis.exists(f"sy:done:{request_id}") == 0


async def test_a_zero_ttl_still_expires_rather_than_living_forever(
    store: RequestStore, redis: aioredis.Redis
) -> None:
    request_id = new_request_id()
    await store.open(request_id, new_key(), ttl_s=0)
    # SET with EX 0 is an error in Redis and no TTL would keep the key forever: one second.
    assert 0 < await redis.pttl(f"sy:seal:{request_id}") <= 1_000


async def test_the_key_expires_unread(store: RequestStore) -> None:
    request_id = new_request_id()
    await store.open(request_id, new_key(), ttl_s=1)

    async def expired() -> bool:
        return (await store.load(request_id)).body_key is None

    await eventually(expired, "the key expires", interval_s=0.1)
    assert await store.load(request_id) == RequestState(body_key=None, done=False)


async def test_finish_marks_the_request_done_and_deletes_its_key(
    store: RequestStore, redis: aioredis.Redis
) -> None:
    request_id = new_request_id()
    await store.open(request_id, new_key(), ttl_s=300)
    await store.finish(request_id, deadline_ms=_in_ms(300))

    assert await store.load(request_id) == RequestState(body_key=None, done=True)
    assert await redis.exists(f"sy:seal:{request_id}") == 0
    # The done mark outlives any redelivery that could still be served: until the deadline,
    # plus a margin (a redelivery after the deadline is refused anyway).
    assert (
        300 + DONE_MARGIN_S - 5 <= await redis.ttl(f"sy:done:{request_id}") <= 300 + DONE_MARGIN_S
    )
    # Finishing twice (a redelivered plan) changes nothing.
    await store.finish(request_id, deadline_ms=_in_ms(300))
    assert await store.load(request_id) == RequestState(body_key=None, done=True)


async def test_a_request_finished_past_its_deadline_keeps_its_mark_for_the_margin(
    store: RequestStore, redis: aioredis.Redis
) -> None:
    request_id = new_request_id()
    await store.finish(request_id, deadline_ms=_in_ms(-60))
    assert 0 < await redis.ttl(f"sy:done:{request_id}") <= DONE_MARGIN_S


async def test_finish_can_keep_the_key_for_a_later_reader_of_the_outcome(
    store: RequestStore, redis: aioredis.Redis
) -> None:
    request_id, key = new_request_id(), new_key()
    await store.open(request_id, key, ttl_s=300)
    await store.finish(request_id, deadline_ms=_in_ms(300), keep_body_key=True)

    assert await store.load(request_id) == RequestState(body_key=key, done=True)
    # The key keeps its own TTL: it still ends on its own.
    assert 0 < await redis.ttl(f"sy:seal:{request_id}") <= 300


async def test_discard_forgets_a_request_without_marking_it_done(store: RequestStore) -> None:
    request_id = new_request_id()
    await store.open(request_id, new_key(), ttl_s=300)
    await store.discard(request_id)
    assert await store.load(request_id) == RequestState(body_key=None, done=False)


async def test_an_unknown_request_has_no_key_and_is_not_done(store: RequestStore) -> None:
    assert await store.load(new_request_id()) == RequestState(body_key=None, done=False)


async def test_requests_do_not_share_state(store: RequestStore) -> None:
    first, second = new_request_id(), new_request_id()
    first_key, second_key = new_key(), new_key()
    await store.open(first, first_key, ttl_s=300)
    await store.open(second, second_key, ttl_s=300)
    await store.finish(first, deadline_ms=_in_ms(300))
    assert await store.load(first) == RequestState(body_key=None, done=True)
    assert await store.load(second) == RequestState(body_key=second_key, done=False)


async def test_the_first_reader_of_a_plan_claims_it_and_a_second_learns_who_holds_it(
    store: RequestStore, redis: aioredis.Redis
) -> None:
    request_id = new_request_id()
    first = await store.load(request_id, claim=(0, "worker-a"))
    second = await store.load(request_id, claim=(0, "worker-b"))
    other_target = await store.load(request_id, claim=(1, "worker-b"))
    assert first.claimed
    assert not second.claimed
    assert second.held_by == b"worker-a"
    assert other_target.claimed  # a claim is per target of the plan
    assert 0 < await redis.ttl(claim_key(request_id, 0)) <= CLAIM_TTL_S


async def test_a_plan_handed_on_stays_marked_past_the_claims_ttl(
    store: RequestStore, redis: aioredis.Redis
) -> None:
    request_id = new_request_id()
    await store.load(request_id, claim=(0, "worker-a"))
    await store.handed_on(request_id, 0, deadline_ms=_in_ms(60))
    later = await store.load(request_id, claim=(0, "worker-b"))
    assert later.held_by == HANDED_ON
    assert await redis.ttl(claim_key(request_id, 0)) > CLAIM_TTL_S


async def test_the_keeper_renews_the_claims_held_and_lets_others_lapse(
    store: RequestStore, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(request_state, "CLAIM_RENEW_S", 0.2)
    held, dropped = new_request_id(), new_request_id()
    await store.load(held, claim=(0, "me"))
    await store.load(dropped, claim=(0, "me"))
    await redis.expire(claim_key(held, 0), 1)
    await redis.expire(claim_key(dropped, 0), 1)
    keeper = ClaimKeeper(redis, "me")
    await keeper.start()
    try:
        with keeper.holding(claim_key(held, 0)):
            await asyncio.sleep(1.3)
            assert await redis.exists(claim_key(held, 0))
            assert not await redis.exists(claim_key(dropped, 0))
    finally:
        await keeper.stop()


async def test_the_keeper_never_renews_a_claim_that_is_no_longer_its_own(
    store: RequestStore, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held here (a handler waits on it) but owned by another worker, or marked handed on: a
    renewal would keep a dead worker's claim alive, or cut the mark's life to a claim's."""
    monkeypatch.setattr(request_state, "CLAIM_RENEW_S", 0.2)
    theirs, handed = new_request_id(), new_request_id()
    await redis.set(claim_key(theirs, 0), b"other-worker", ex=1)
    await store.load(handed, claim=(0, "me"))
    await store.handed_on(handed, 0, deadline_ms=_in_ms(600))
    keeper = ClaimKeeper(redis, "me")
    await keeper.start()
    try:
        with keeper.holding(claim_key(theirs, 0)), keeper.holding(claim_key(handed, 0)):
            await asyncio.sleep(1.3)
            assert not await redis.exists(claim_key(theirs, 0))
            assert await redis.ttl(claim_key(handed, 0)) > CLAIM_TTL_S
    finally:
        await keeper.stop()
