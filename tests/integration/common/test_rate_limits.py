"""``RateLimiter`` against real Redis: each dimension's limit and its x-ratelimit figures,
refusals that consume nothing, isolation between projects and models, replicas sharing one
count, windows that slide, and exact limits under concurrency."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from services.common.rate_limits import Dimension, RateDecision, RateLimit, RateLimiter
from services.common.redis_client import REDIS_DOWN, connect_redis

pytestmark = pytest.mark.integration

MODEL = "openai/gpt-4o-mini"


def new_project() -> str:
    return f"proj-{uuid.uuid4().hex}"


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[list[aioredis.Redis]]:
    """Four replicas' clients, built as the services build theirs."""
    made = [connect_redis(redis_url) for _ in range(4)]
    try:
        yield made
    finally:
        for client in made:
            await client.aclose()


async def server_ms(redis: aioredis.Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def into_window(redis: aioredis.Redis, window_ms: int, at_ms: int) -> None:
    """Sleep until the server's clock is next ``at_ms`` into a window."""
    elapsed = await server_ms(redis) % window_ms
    await asyncio.sleep(((at_ms - elapsed) % window_ms) / 1000)


async def clear_of_window_end(redis: aioredis.Redis, window_ms: int = 60_000) -> None:
    """Tests that count exactly in a real minute must not cross into the next one, where the
    counts so far turn into a weighted previous window."""
    if await server_ms(redis) % window_ms > window_ms - 3_000:
        await into_window(redis, window_ms, 0)


async def admit_many(
    limiters: list[RateLimiter], project: str, n: int, *, limit: RateLimit, tokens: int = 1
) -> list[RateDecision]:
    """``n`` concurrent admissions, spread over the limiters (replicas)."""
    return list(
        await asyncio.gather(
            *(
                limiters[i % len(limiters)].admit(project, MODEL, tokens=tokens, limit=limit)
                for i in range(n)
            )
        )
    )


async def test_requests_per_minute_refuse_the_sixth_and_count_the_headers_down(
    redis: aioredis.Redis,
) -> None:
    limiter, project, limit = RateLimiter(redis), new_project(), RateLimit(requests_per_minute=5)
    await clear_of_window_end(redis)

    for used in range(1, 6):
        decision = await limiter.admit(project, MODEL, tokens=100, limit=limit)
        assert decision.allowed
        assert decision.limited_by is None
        assert decision.retry_after_s is None
        assert (decision.limit_requests, decision.remaining_requests) == (5, 5 - used)
        # Back to zero when this minute's count has weighed out of the next minute too.
        assert decision.reset_requests_s is not None
        assert 60 < decision.reset_requests_s <= 120
        assert (decision.limit_tokens, decision.remaining_tokens, decision.reset_tokens_s) == (
            None,
            None,
            None,
        )

    refused = await limiter.admit(project, MODEL, tokens=100, limit=limit)
    assert not refused.allowed
    assert refused.limited_by is Dimension.REQUESTS
    assert (refused.limit_requests, refused.remaining_requests) == (5, 0)
    # The next minute, then a fifth of it for this minute's 5 to weigh no more than 4.
    assert refused.retry_after_s is not None
    assert 12 < refused.retry_after_s <= 72


async def test_tokens_per_minute(redis: aioredis.Redis) -> None:
    limiter, project, limit = RateLimiter(redis), new_project(), RateLimit(tokens_per_minute=1000)
    await clear_of_window_end(redis)

    first = await limiter.admit(project, MODEL, tokens=400, limit=limit)
    second = await limiter.admit(project, MODEL, tokens=400, limit=limit)
    assert first.allowed
    assert second.allowed
    assert (first.limit_tokens, first.remaining_tokens) == (1000, 600)
    assert second.remaining_tokens == 200
    assert (second.limit_requests, second.remaining_requests) == (None, None)

    refused = await limiter.admit(project, MODEL, tokens=400, limit=limit)
    assert not refused.allowed
    assert refused.limited_by is Dimension.TOKENS
    assert refused.remaining_tokens == 200
    # The next minute, then a quarter of it for 800 to weigh no more than 600.
    assert refused.retry_after_s is not None
    assert 15 < refused.retry_after_s <= 75

    fits = await limiter.admit(project, MODEL, tokens=200, limit=limit)
    assert fits.allowed
    assert fits.remaining_tokens == 0
    assert not (await limiter.admit(project, MODEL, tokens=1, limit=limit)).allowed


async def test_a_refusal_on_one_dimension_consumes_nothing_on_the_others(
    redis: aioredis.Redis,
) -> None:
    limiter = RateLimiter(redis)
    await clear_of_window_end(redis)

    # Refused on tokens: no request is counted.
    project, limit = new_project(), RateLimit(requests_per_minute=3, tokens_per_minute=100)
    assert (await limiter.admit(project, MODEL, tokens=60, limit=limit)).allowed
    refused = await limiter.admit(project, MODEL, tokens=60, limit=limit)
    assert (refused.allowed, refused.limited_by) == (False, Dimension.TOKENS)
    assert (refused.remaining_requests, refused.remaining_tokens) == (2, 40)
    fits = await limiter.admit(project, MODEL, tokens=40, limit=limit)
    assert fits.allowed
    assert (fits.remaining_requests, fits.remaining_tokens) == (1, 0)

    # Refused on requests: no token is counted.
    project, limit = new_project(), RateLimit(requests_per_minute=1, tokens_per_minute=1000)
    assert (await limiter.admit(project, MODEL, tokens=100, limit=limit)).allowed
    for _ in range(3):
        refused = await limiter.admit(project, MODEL, tokens=100, limit=limit)
        assert (refused.allowed, refused.limited_by) == (False, Dimension.REQUESTS)
        assert refused.remaining_tokens == 900
    assert await redis.hget(f"sy:rl:{{{project}}}:tpm:{MODEL}", "c") == b"100"


async def test_requests_per_day(redis: aioredis.Redis) -> None:
    limiter, project = RateLimiter(redis), new_project()
    limit = RateLimit(requests_per_minute=10, requests_per_day=3)
    await clear_of_window_end(redis)

    decisions = [await limiter.admit(project, MODEL, tokens=1, limit=limit) for _ in range(3)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining_requests for d in decisions] == [9, 8, 7]

    refused = await limiter.admit(project, MODEL, tokens=1, limit=limit)
    assert not refused.allowed
    assert refused.limited_by is Dimension.REQUESTS_PER_DAY
    assert (refused.limit_requests, refused.remaining_requests) == (10, 7)  # RPM untouched
    # The next day, then a third of it for today's 3 to weigh no more than 2.
    assert refused.retry_after_s is not None
    assert 86_400 / 3 < refused.retry_after_s <= 86_400 * 4 / 3

    # A day limit alone reports no per-minute figures.
    only_day = RateLimit(requests_per_day=1)
    allowed = await limiter.admit(new_project(), MODEL, tokens=1, limit=only_day)
    assert allowed.allowed
    assert (allowed.limit_requests, allowed.remaining_requests, allowed.reset_requests_s) == (
        None,
        None,
        None,
    )


async def test_counts_are_per_project_and_per_model(redis: aioredis.Redis) -> None:
    limiter, limit = RateLimiter(redis), RateLimit(requests_per_minute=2)
    project, other_project = new_project(), new_project()
    await clear_of_window_end(redis)

    for _ in range(2):
        assert (await limiter.admit(project, MODEL, tokens=1, limit=limit)).allowed
    assert not (await limiter.admit(project, MODEL, tokens=1, limit=limit)).allowed

    other_model = await limiter.admit(project, "anthropic/claude-haiku", tokens=1, limit=limit)
    assert other_model.allowed
    assert other_model.remaining_requests == 1
    elsewhere = await limiter.admit(other_project, MODEL, tokens=1, limit=limit)
    assert elsewhere.allowed
    assert elsewhere.remaining_requests == 1


async def test_replicas_share_one_count(clients: list[aioredis.Redis]) -> None:
    one, other = RateLimiter(clients[0]), RateLimiter(clients[1])
    project, limit = new_project(), RateLimit(requests_per_minute=4)
    await clear_of_window_end(clients[0])

    remaining = []
    for limiter in (one, other, one, other):
        decision = await limiter.admit(project, MODEL, tokens=1, limit=limit)
        assert decision.allowed
        remaining.append(decision.remaining_requests)
    assert remaining == [3, 2, 1, 0]
    assert not (await one.admit(project, MODEL, tokens=1, limit=limit)).allowed
    assert not (await other.admit(project, MODEL, tokens=1, limit=limit)).allowed


async def test_exactly_the_limit_is_admitted_under_concurrency(
    clients: list[aioredis.Redis],
) -> None:
    fleet = [RateLimiter(client) for client in clients]
    project, limit = new_project(), RateLimit(requests_per_minute=30)
    await clear_of_window_end(clients[0])

    decisions = await admit_many(fleet, project, 100, limit=limit)

    assert sum(d.allowed for d in decisions) == 30
    refused = [d for d in decisions if not d.allowed]
    assert {d.limited_by for d in refused} == {Dimension.REQUESTS}
    assert all(d.retry_after_s is not None and d.retry_after_s > 0 for d in refused)
    remaining = sorted(d.remaining_requests or 0 for d in decisions if d.allowed)
    assert remaining == list(range(30))


async def test_a_full_window_frees_up_as_it_slides(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis, minute_ms=1000)
    project, limit = new_project(), RateLimit(requests_per_minute=5)
    await into_window(redis, 1000, 50)
    assert all(d.allowed for d in await admit_many([limiter], project, 5, limit=limit))

    refused = await limiter.admit(project, MODEL, tokens=1, limit=limit)
    assert not refused.allowed
    # The rest of this window (a little under 1 s), then a fifth of the next for the 5 counted
    # here to weigh no more than 4.
    assert refused.retry_after_s is not None
    assert 1.0 < refused.retry_after_s <= 1.2

    await asyncio.sleep(refused.retry_after_s - 0.1)
    assert not (await limiter.admit(project, MODEL, tokens=1, limit=limit)).allowed
    await asyncio.sleep(0.13)
    assert (await limiter.admit(project, MODEL, tokens=1, limit=limit)).allowed


async def weighed_halfway(
    redis: aioredis.Redis, limiter: RateLimiter, limit: RateLimit, window_ms: int
) -> tuple[str, list[RateDecision]] | None:
    """Five admits early in one window, then four half-way through the next. None when the
    machine was too slow for the timing to hold (the admits spilled out of the slice of the
    window whose weight the test assumes), so that the caller tries again rather than
    asserting on a scenario that did not happen."""
    project = new_project()
    await into_window(redis, window_ms, window_ms // 50)
    started = await server_ms(redis)
    first = await admit_many([limiter], project, 5, limit=limit)
    if (await server_ms(redis)) // window_ms != started // window_ms:
        return None
    assert all(d.allowed for d in first)

    await into_window(redis, window_ms, 0)
    await into_window(redis, window_ms, window_ms // 2)
    begun = await server_ms(redis)
    decisions = [await limiter.admit(project, MODEL, tokens=1, limit=limit) for _ in range(4)]
    ended = await server_ms(redis)
    in_next_window = begun // window_ms == started // window_ms + 1 == ended // window_ms
    # Until 60% of the window the previous five weigh more than 2: the third must not fit.
    if not in_next_window or ended % window_ms >= window_ms * 6 // 10:
        return None
    return project, decisions


async def test_the_previous_window_weighs_by_how_much_of_it_still_overlaps(
    redis: aioredis.Redis,
) -> None:
    window_ms = 1000
    limiter, limit = RateLimiter(redis, minute_ms=window_ms), RateLimit(requests_per_minute=5)
    for _ in range(5):
        if (outcome := await weighed_halfway(redis, limiter, limit, window_ms)) is not None:
            break
    else:
        pytest.fail("five tries in a row were too slow to land in the window's slice")
    project, decisions = outcome

    # Half-way through the next window the 5 weigh 2.5: two more fit, a third does not.
    assert [d.allowed for d in decisions] == [True, True, False, False]
    assert [d.remaining_requests for d in decisions] == [1, 0, 0, 0]
    # The third fits when the previous window weighs 2: at 600 ms into this one.
    retry_after_s = decisions[-1].retry_after_s
    assert retry_after_s is not None
    assert 0 < retry_after_s <= 0.1
    await asyncio.sleep(retry_after_s + 0.03)
    assert (await limiter.admit(project, MODEL, tokens=1, limit=limit)).allowed

    # Two windows later nothing is left of either count, and the keys are gone.
    await asyncio.sleep(2.1)
    await into_window(redis, window_ms, 100)
    assert await redis.exists(f"sy:rl:{{{project}}}:rpm:{MODEL}") == 0
    decisions = await admit_many([limiter], project, 6, limit=limit)
    assert [d.allowed for d in decisions].count(True) == 5


async def test_a_request_larger_than_the_token_limit_can_never_fit(redis: aioredis.Redis) -> None:
    limiter, project = RateLimiter(redis), new_project()
    limit = RateLimit(requests_per_minute=5, tokens_per_minute=100)
    await clear_of_window_end(redis)

    too_large = await limiter.admit(project, MODEL, tokens=101, limit=limit)
    assert not too_large.allowed
    assert too_large.limited_by is Dimension.TOKENS
    assert too_large.retry_after_s is None
    assert (too_large.remaining_requests, too_large.remaining_tokens) == (5, 100)

    fits = await limiter.admit(project, MODEL, tokens=100, limit=limit)
    assert fits.allowed
    assert (fits.remaining_requests, fits.remaining_tokens) == (4, 0)
    # Larger than the limit outranks a mere wait on another dimension.
    assert (await limiter.admit(project, MODEL, tokens=101, limit=limit)).retry_after_s is None

    # A limit of 0 refuses every request, for ever.
    blocked = await limiter.admit(project, MODEL, tokens=1, limit=RateLimit(requests_per_day=0))
    assert (blocked.allowed, blocked.limited_by, blocked.retry_after_s) == (
        False,
        Dimension.REQUESTS_PER_DAY,
        None,
    )


async def test_keys_share_the_projects_hash_tag_and_expire(redis: aioredis.Redis) -> None:
    limiter, project = RateLimiter(redis), new_project()
    limit = RateLimit(requests_per_minute=5, tokens_per_minute=100, requests_per_day=10)
    assert (await limiter.admit(project, MODEL, tokens=10, limit=limit)).allowed
    assert (await limiter.admit(project, "other/model", tokens=10, limit=limit)).allowed

    keys = [key async for key in redis.scan_iter(match=f"sy:rl:{{{project}}}:*")]
    assert len(keys) == 6
    assert {key_slot(key) for key in keys} == {key_slot(project.encode())}
    for key in keys:
        ttl = await redis.pttl(key)
        assert 0 < ttl <= (172_800_000 if b":rpd:" in key else 120_000), key


async def test_unlimited_never_calls_redis_and_redis_errors_propagate() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{closed_port}/0")
    try:
        limiter = RateLimiter(dead)
        decision = await limiter.admit(new_project(), MODEL, tokens=10**6, limit=RateLimit())
        assert decision.allowed
        assert decision.limited_by is None
        assert decision.limit_requests is None
        assert decision.limit_tokens is None
        assert decision.retry_after_s is None

        with pytest.raises(REDIS_DOWN):
            await limiter.admit(
                new_project(), MODEL, tokens=1, limit=RateLimit(requests_per_minute=1)
            )
    finally:
        await dead.aclose()


async def test_arguments_that_cannot_make_sense_are_refused(redis: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        RateLimit(tokens_per_minute=-1)
    with pytest.raises(ValueError, match="windows must be positive"):
        RateLimiter(redis, minute_ms=0)
    limiter, limit = RateLimiter(redis), RateLimit(requests_per_minute=1)
    with pytest.raises(ValueError, match="tokens must not be negative"):
        await limiter.admit(new_project(), MODEL, tokens=-1, limit=limit)
    for project in ("", "proj}x", "{proj}"):
        with pytest.raises(ValueError, match="hold no braces"):
            await limiter.admit(project, MODEL, tokens=1, limit=limit)
