"""Per-request state in Redis that outlives any one process: the sealing key and the done mark.

- ``sy:seal:<request_id>``: the request's body key (see contracts.sealing). Written by ingress,
  read by the worker, deleted when the request ends; its TTL bounds how long a forgotten request
  stays readable.
- ``sy:cancel:<request_id>``: set by ingress when a streaming caller goes away; the worker
  looks now and then, and stops the vendor call rather than pay for an answer nobody reads.
- ``sy:done:<request_id>``: set once a request's outcome was delivered and its usage recorded.
  A message redelivered after a crash finds it and is skipped: the vendor is not called twice and
  the caller is not charged twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis

# A done mark must outlive every redelivery of its request that could still be served. Past
# the deadline a redelivered plan is refused anyway, so the mark lives until the deadline plus
# this margin, and Redis holds marks for the requests of the last minutes, not of days.
DONE_MARGIN_S = 600


def _seal_key(request_id: str) -> str:
    return f"sy:seal:{request_id}"


def _done_key(request_id: str) -> str:
    return f"sy:done:{request_id}"


def _cancel_key(request_id: str) -> str:
    return f"sy:cancel:{request_id}"


@dataclass(frozen=True)
class RequestState:
    body_key: bytes | None  # None: expired, or the request already ended
    done: bool


class RequestStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def open(self, request_id: str, body_key: bytes, *, ttl_s: int) -> None:
        # The raw command: redis-py's ``set()`` inspects its arguments on every call (for
        # deprecation warnings), which profiled at a sixth of ingress CPU.
        command = ("SET", _seal_key(request_id), body_key, "EX", max(ttl_s, 1))
        await self._redis.execute_command(*command)  # type: ignore[no-untyped-call]

    async def load(self, request_id: str) -> RequestState:
        body_key, done = await self._redis.mget(_seal_key(request_id), _done_key(request_id))
        # The client is not built with decode_responses, so values are bytes.
        return RequestState(body_key=cast(bytes | None, body_key), done=done is not None)

    async def finish(
        self, request_id: str, *, deadline_ms: int, keep_body_key: bool = False
    ) -> None:
        """Mark the request done. ``keep_body_key`` leaves the key for a later reader of a
        sealed outcome (async and batch results), whose own TTL then ends it."""
        ttl_s = max(deadline_ms - time.time_ns() // 1_000_000, 0) // 1000 + DONE_MARGIN_S
        # No MULTI: if we die between the two, the key just lives out its TTL.
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(_done_key(request_id), b"1", ex=ttl_s)
            if not keep_body_key:
                pipe.delete(_seal_key(request_id))
            await pipe.execute()

    async def cancel(self, request_id: str, *, ttl_s: int) -> None:
        await self._redis.set(_cancel_key(request_id), b"1", ex=max(ttl_s, 1))

    async def cancelled(self, request_id: str) -> bool:
        return bool(await self._redis.exists(_cancel_key(request_id)))

    async def discard(self, request_id: str) -> None:
        """Forget a request that never made it into Kafka."""
        await self._redis.delete(_seal_key(request_id))
