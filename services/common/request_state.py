"""Per-request state in Redis that outlives any one process: the sealing key and the done mark.

- ``sy:seal:<request_id>``: the request's body key (see contracts.sealing). Written by ingress,
  read by the worker, deleted when the request ends; its TTL bounds how long a forgotten request
  stays readable.
- ``sy:cancel:<request_id>``: set by ingress when a streaming caller goes away; the worker
  looks now and then, and stops the vendor call rather than pay for an answer nobody reads.
- ``sy:done:<request_id>``: set once a request's outcome was delivered and its usage recorded.
  A message redelivered after a crash finds it and is skipped: the vendor is not called twice and
  the caller is not charged twice.
- ``sy:claim:<request_id>:<cursor>``: the worker serving a plan at that target, with a short TTL
  it renews while it works (``ClaimKeeper``). A rebalance can hand a partition to another worker
  while the first still serves its messages (a request waiting for capacity may take a minute);
  the copy the new owner reads finds the claim and waits for the done mark, or for the claim to
  lapse (its holder died), instead of calling the vendor a second time.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis

from services.common.periodic import Periodic
from services.common.redis_client import REDIS_DOWN
from services.common.redis_script import RedisScript

log = logging.getLogger(__name__)

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


def claim_key(request_id: str, cursor: int) -> str:
    return f"sy:claim:{request_id}:{cursor}"


# A claim lapses this long after its holder stopped renewing it (died): the wait of a copy
# redelivered after a crash.
CLAIM_TTL_S = 10
CLAIM_RENEW_S = 3.0
# What a claim says once its plan was handed to the next target's provider: a copy of the plan
# read later has nothing left to do.
HANDED_ON = b"handed-on"


# One round trip on every plan's path (a pipeline of the same commands costs a worker more CPU
# in redis-py than the script does in Redis). Answers {body key, done mark, holder}; holder is
# false when the claim is now the caller's.
_LOAD_AND_CLAIM = RedisScript(
    f"""
local holder = redis.call('GET', KEYS[3])
if not holder then
  redis.call('SET', KEYS[3], ARGV[1], 'EX', {CLAIM_TTL_S})
end
return {{redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), holder}}
"""
)


@dataclass(frozen=True)
class RequestState:
    body_key: bytes | None  # None: expired, or the request already ended
    done: bool
    # Who holds the claim on this plan when another does (see the module docstring); None when
    # it is ours (or none was asked for). ``HANDED_ON``: the plan went on to its next target.
    held_by: bytes | None = None

    @property
    def claimed(self) -> bool:
        return self.held_by is None


class RequestStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def open(self, request_id: str, body_key: bytes, *, ttl_s: int) -> None:
        # The raw command: redis-py's ``set()`` inspects its arguments on every call (for
        # deprecation warnings), which profiled at a sixth of ingress CPU.
        command = ("SET", _seal_key(request_id), body_key, "EX", max(ttl_s, 1))
        await self._redis.execute_command(*command)  # type: ignore[no-untyped-call]

    async def load(self, request_id: str, *, claim: tuple[int, str] | None = None) -> RequestState:
        """The request's key and done mark; with ``claim`` (cursor, owner), also try to claim
        the plan at that cursor, in the same round trip."""
        if claim is None:
            body_key, done = await self._redis.mget(_seal_key(request_id), _done_key(request_id))
            # The client is not built with decode_responses, so values are bytes.
            return RequestState(body_key=cast(bytes | None, body_key), done=done is not None)
        cursor, owner = claim
        keys = (_seal_key(request_id), _done_key(request_id), claim_key(request_id, cursor))
        body_key, done, holder = cast(
            "list[bytes | None]", await _LOAD_AND_CLAIM.run(self._redis, keys, (owner,))
        )
        return RequestState(body_key=body_key, done=done is not None, held_by=holder)

    async def handed_on(self, request_id: str, cursor: int, *, deadline_ms: int) -> None:
        """The plan at ``cursor`` went on to the next target: later copies of it are skipped."""
        ttl_s = max(deadline_ms - time.time_ns() // 1_000_000, 0) // 1000 + DONE_MARGIN_S
        await self._redis.set(claim_key(request_id, cursor), HANDED_ON, ex=ttl_s)

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


# Extends the claims that are still the owner's (ARGV[1]): never one another worker took after
# ours lapsed, nor a plan's handed-on mark.
_RENEW_OWN = RedisScript(
    f"""
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('EXPIRE', KEYS[i], {CLAIM_TTL_S})
  end
end
return 1
"""
)


class ClaimKeeper:
    """Renews the claims ``owner`` holds in this process, all in one round trip every
    ``CLAIM_RENEW_S`` (a task per request would cost more than the requests)."""

    def __init__(self, redis: aioredis.Redis, owner: str) -> None:
        self._redis = redis
        self._owner = owner
        self._held: dict[str, int] = {}  # key -> how many handlers hold it here
        self._loop = Periodic("claim-keeper", CLAIM_RENEW_S, self._renew)

    @contextlib.contextmanager
    def holding(self, key: str) -> Iterator[None]:
        self._held[key] = self._held.get(key, 0) + 1
        try:
            yield
        finally:
            left = self._held[key] - 1
            if left:
                self._held[key] = left
            else:
                del self._held[key]

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _renew(self) -> None:
        if not self._held:
            return
        try:
            await _RENEW_OWN.run(self._redis, list(self._held), (self._owner,))
        except REDIS_DOWN:
            log.warning("could not renew %d claims (Redis down)", len(self._held))
