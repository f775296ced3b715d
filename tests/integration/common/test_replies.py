"""``ReplyInbox`` and ``ReplySender`` against real Redis: one reader multiplexes the replies of
many waiting requests, each of which gets exactly its own replies, in the order they were sent."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from contracts.chat import ChatDelta
from contracts.replies import OutcomeStatus, ReplyChunk, ReplyFinal
from services.common.replies import ReplyInbox, ReplySender, ReplySubscription
from tests.integration.common.polling import eventually

pytestmark = pytest.mark.integration

_WAIT_S = 30.0

Reply = ReplyChunk | ReplyFinal


def chunk(request_id: str, seq: int) -> ReplyChunk:
    return ReplyChunk(
        request_id=request_id,
        attempt_id="worker-a:0",
        seq=seq,
        delta=ChatDelta(text=f"{request_id}/{seq}"),
        provider="openai",
        model="openai/gpt-4o-mini",
    )


def final(request_id: str) -> ReplyFinal:
    return ReplyFinal(request_id=request_id, attempt_id="worker-a:0", status=OutcomeStatus.OK)


@pytest.fixture
async def inbox_redis(redis_url: str) -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """The inbox's own client, its connections named so ``CLIENT LIST`` can count them."""
    name = f"test-inbox-{uuid.uuid4().hex[:12]}"
    client = aioredis.Redis.from_url(redis_url, client_name=name)
    try:
        yield client, name
    finally:
        await client.aclose()


@pytest.fixture
async def inbox(inbox_redis: tuple[aioredis.Redis, str]) -> AsyncIterator[ReplyInbox]:
    box = ReplyInbox(inbox_redis[0], instance_id=f"test-{uuid.uuid4().hex[:12]}")
    await box.start()
    try:
        yield box
    finally:
        await box.stop()


async def connections_named(redis: aioredis.Redis, name: str) -> int:
    return sum(1 for client in await redis.client_list() if client.get("name") == name)


async def until_healthy(inbox: ReplyInbox) -> None:
    await eventually(lambda: inbox.healthy, "the inbox reader connects")


async def collect(subscription: ReplySubscription) -> list[Reply]:
    """Replies until the final one."""
    replies: list[Reply] = []
    while not replies or replies[-1].kind != "final":
        replies.append(await subscription.next(_WAIT_S))
    return replies


async def test_many_waiting_requests_get_their_own_replies_in_order_over_one_connection(
    inbox: ReplyInbox,
    inbox_redis: tuple[aioredis.Redis, str],
    redis: aioredis.Redis,
    redis_url: str,
) -> None:
    requests, chunks_each, senders = 500, 3, 5
    ids = [f"req-{uuid.uuid4().hex[:8]}-{n}" for n in range(requests)]
    subscriptions = {request_id: inbox.register(request_id) for request_id in ids}
    await until_healthy(inbox)
    assert inbox.waiting == requests
    # 500 waiting requests, one reading connection.
    assert await connections_named(redis, inbox_redis[1]) == 1

    async def sender(share: list[str], seed: int) -> None:
        """Interleaves its requests' replies at random, keeping each request's own order,
        through a client of its own (as a worker process would)."""
        rng = random.Random(seed)
        queues: dict[str, list[Reply]] = {
            rid: [*(chunk(rid, s) for s in range(chunks_each)), final(rid)] for rid in share
        }
        client = aioredis.Redis.from_url(redis_url)
        try:
            send = ReplySender(client)
            while queues:
                rid = rng.choice(list(queues))
                await send.send(inbox.key, queues[rid].pop(0))
                if not queues[rid]:
                    del queues[rid]
        finally:
            await client.aclose()

    shares = [ids[i::senders] for i in range(senders)]
    collecting = [asyncio.create_task(collect(subscriptions[rid])) for rid in ids]
    await asyncio.gather(*(sender(share, seed) for seed, share in enumerate(shares)))
    received = await asyncio.gather(*collecting)

    for request_id, replies in zip(ids, received, strict=True):
        assert [r.request_id for r in replies] == [request_id] * (chunks_each + 1)
        assert [r.seq for r in replies if isinstance(r, ReplyChunk)] == list(range(chunks_each))
        assert [r.delta.text for r in replies if isinstance(r, ReplyChunk)] == [
            f"{request_id}/{s}" for s in range(chunks_each)
        ]
        assert replies[-1].kind == "final"
        assert subscriptions[request_id].queue.empty()
    # Delivering 2,000 replies did not take more connections either.
    assert await connections_named(redis, inbox_redis[1]) == 1


async def test_replies_for_unknown_requests_and_unreadable_entries_are_skipped(
    inbox: ReplyInbox, redis: aioredis.Redis
) -> None:
    sender = ReplySender(redis)
    async with inbox.subscribe("req-known") as known:
        await sender.send(inbox.key, chunk("req-gone", 0))  # its caller stopped waiting
        await redis.xadd(inbox.key, {b"r": b"{not json"})
        await redis.xadd(inbox.key, {b"r": b'{"kind": "chunk", "request_id": "req-known"}'})
        await redis.xadd(inbox.key, {b"something": b"else"})
        await sender.send(inbox.key, chunk("req-known", 0))
        await sender.send(inbox.key, final("req-known"))

        replies = await collect(known)
        assert replies == [chunk("req-known", 0), final("req-known")]
        assert known.queue.empty()
        assert inbox.healthy
    assert inbox.waiting == 0


async def test_read_replies_are_trimmed_from_the_inbox(
    inbox: ReplyInbox, redis: aioredis.Redis
) -> None:
    sender = ReplySender(redis)
    async with inbox.subscribe("req-trim") as waiting:
        for seq in range(50):
            await sender.send(inbox.key, chunk("req-trim", seq))
        await sender.send(inbox.key, final("req-trim"))
        assert len(await collect(waiting)) == 51

    async def trimmed() -> bool:
        # MINID keeps the last entry read; everything before it is gone.
        return int(await redis.xlen(inbox.key)) <= 1

    await eventually(trimmed, "the reader trims what it read")
