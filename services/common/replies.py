"""Replies over Redis: workers write them, the waiting ingress process reads them.

Each ingress process owns one Redis stream (its *inbox*) and names it as ``reply_to`` in every
envelope it publishes. One reader task per process blocks on that stream and hands each reply to
the request waiting for it, so a thousand waiting requests cost one Redis connection, not a
thousand (DESIGN.md: a waiting HTTP request must not hold a Redis connection of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import redis.asyncio as aioredis

from contracts.replies import REPLY_ADAPTER, ReplyChunk, ReplyFinal

log = logging.getLogger(__name__)

_FIELD = b"r"
# The reader trims what it has read; this bound only matters for an inbox nobody reads any more
# (its ingress died), which must not grow without end before its TTL removes it.
_INBOX_MAXLEN = 20_000
_INBOX_TTL_S = 3_600


def inbox_key(instance_id: str) -> str:
    return f"sy:inbox:{instance_id}"


class ReplySender:
    """Worker side: append replies to the inbox named in the envelope."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def send(self, reply_to: str, reply: ReplyChunk | ReplyFinal) -> None:
        await self._redis.execute_command(*_xadd(reply_to, reply))  # type: ignore[no-untyped-call]

    async def send_many(self, reply_to: str, replies: list[ReplyChunk]) -> None:
        """Several replies in one round trip (the chunks a vendor sent in one read)."""
        if len(replies) == 1:
            await self.send(reply_to, replies[0])
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for reply in replies:
                pipe.execute_command(*_xadd(reply_to, reply))
            await pipe.execute()


def _xadd(reply_to: str, reply: ReplyChunk | ReplyFinal) -> tuple[object, ...]:
    # The raw command, like RequestStore.open: redis-py's ``xadd()`` costs more than the I/O.
    return ("XADD", reply_to, "MAXLEN", "~", _INBOX_MAXLEN, "*", _FIELD, reply.to_bytes())


@dataclass
class ReplySubscription:
    request_id: str
    queue: asyncio.Queue[ReplyChunk | ReplyFinal] = field(default_factory=asyncio.Queue)

    async def next(self, timeout_s: float) -> ReplyChunk | ReplyFinal:
        """The next reply; raises TimeoutError when none comes in ``timeout_s``."""
        if not self.queue.empty():  # the common case under load: no timer, no task
            return self.queue.get_nowait()
        async with asyncio.timeout(max(timeout_s, 0.0)):
            return await self.queue.get()


class ReplyInbox:
    """Ingress side: one stream, one reader, many waiting requests."""

    def __init__(self, redis: aioredis.Redis, *, instance_id: str | None = None) -> None:
        self._redis = redis
        self.key = inbox_key(instance_id or uuid.uuid4().hex)
        self._waiting: dict[str, ReplySubscription] = {}
        self._reader: asyncio.Task[None] | None = None
        self.healthy = False

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read_forever(), name="reply-inbox")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        with contextlib.suppress(Exception):
            await self._redis.delete(self.key)

    def register(self, request_id: str) -> ReplySubscription:
        """Register before publishing the request, so no reply can arrive unseen; pair with
        ``unregister`` (or use ``subscribe``)."""
        subscription = ReplySubscription(request_id)
        self._waiting[request_id] = subscription
        return subscription

    def unregister(self, request_id: str) -> None:
        self._waiting.pop(request_id, None)

    @contextlib.asynccontextmanager
    async def subscribe(self, request_id: str) -> AsyncIterator[ReplySubscription]:
        subscription = self.register(request_id)
        try:
            yield subscription
        finally:
            self.unregister(request_id)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def _read_forever(self) -> None:
        # The inbox name is new for every process, so reading from the start reads only ours.
        # ("$" would miss replies that land between two reads.)
        last_id: bytes | str = b"0-0"
        touched = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                # The RESP2 reply shape: this client never switches to RESP3.
                answer = cast(
                    "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]",
                    await self._redis.xread({self.key: last_id}, count=1000, block=1000),
                )
                self.healthy = True
            except asyncio.CancelledError:
                raise
            except Exception:
                self.healthy = False
                log.warning("reading the reply inbox failed; retrying", exc_info=True)
                await asyncio.sleep(0.2)
                continue
            for _key, entries in answer:
                for entry_id, fields in entries:
                    last_id = entry_id
                    self._deliver(fields.get(_FIELD))
            if answer:
                # Read replies are never read again: drop them now rather than keep every
                # response body in Redis until MAXLEN pushes it out.
                with contextlib.suppress(Exception):
                    await self._redis.execute_command(  # type: ignore[no-untyped-call]
                        "XTRIM", self.key, "MINID", last_id
                    )
            if answer and loop.time() - touched > 60:
                # The inbox outlives this process by at most the TTL.
                touched = loop.time()
                with contextlib.suppress(Exception):
                    await self._redis.expire(self.key, _INBOX_TTL_S)

    def _deliver(self, raw: bytes | None) -> None:
        if raw is None:
            return
        try:
            reply = REPLY_ADAPTER.validate_json(raw)
        except ValueError:
            log.warning("dropping an unreadable reply")
            return
        subscription = self._waiting.get(reply.request_id)
        if subscription is not None:  # else the caller has gone: nothing to do
            subscription.queue.put_nowait(reply)
