"""Which worker replicas serve which provider, and where their vendor is: each worker writes a
heartbeat to Redis every few seconds; ``GET /v1/providers`` reads them, and ``LiveProviders``
keeps a copy for the router and workers, so a plan never waits on a provider topic nobody
consumes. Only the vendor's host is written, never a key or a full URL with credentials in it."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import orjson
import redis.asyncio as aioredis

from contracts._base import now_ms
from services.common.periodic import Periodic
from services.common.redis_client import REDIS_DOWN

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
# A replica not heard from for this long is not listed.
_STALE_MS = 20_000


def _key(provider: str) -> str:
    return f"sy:workers:{provider}"


@dataclass(frozen=True)
class Replica:
    instance_id: str
    vendor_host: str
    simulated: bool
    seen_ms: int


@dataclass(frozen=True)
class ServedProvider:
    vendor_host: str
    simulated: bool


class Heartbeat:
    def __init__(
        self, redis: aioredis.Redis, instance_id: str, providers: Mapping[str, ServedProvider]
    ) -> None:
        self._redis = redis
        self._instance_id = instance_id
        self._providers = dict(providers)
        self._loop = Periodic("worker-heartbeat", HEARTBEAT_S, self._beat_quietly, at_start=True)

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        with contextlib.suppress(*REDIS_DOWN):
            async with self._redis.pipeline(transaction=False) as pipe:
                for provider in self._providers:
                    pipe.hdel(_key(provider), self._instance_id)
                await pipe.execute()

    async def _beat_quietly(self) -> None:
        with contextlib.suppress(*REDIS_DOWN):  # the next beat will do
            await self.beat()

    async def beat(self) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for provider, served in self._providers.items():
                value = orjson.dumps(
                    {"host": served.vendor_host, "simulated": served.simulated, "ms": now_ms()}
                )
                pipe.hset(_key(provider), self._instance_id, value)
                pipe.pexpire(_key(provider), _STALE_MS * 3)
            await pipe.execute()


def vendor_host(base_url: str) -> str:
    parts = urlsplit(base_url)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else ""


async def replicas(redis: aioredis.Redis, provider: str) -> list[Replica]:
    raw = cast("dict[bytes, bytes]", await redis.hgetall(_key(provider)))
    return _live(raw)


def _live(raw: dict[bytes, bytes]) -> list[Replica]:
    now = now_ms()
    found: list[Replica] = []
    for instance, value in raw.items():
        beat = orjson.loads(value)
        if now - int(beat["ms"]) <= _STALE_MS:
            found.append(
                Replica(
                    instance_id=instance.decode(),
                    vendor_host=str(beat["host"]),
                    simulated=bool(beat["simulated"]),
                    seen_ms=int(beat["ms"]),
                )
            )
    return sorted(found, key=lambda r: r.instance_id)


class LiveProviders:
    """This process's copy of which providers have a live worker replica, refreshed every
    ``refresh_s`` in one round trip.

    A provider counts as unserved only once no replica of it has been seen for ``grace_s`` in a
    row while Redis answered: heartbeats come every few seconds, so a Redis restart, a stack
    starting, or a worker restarting are not mistaken for a provider nobody serves. While Redis
    is away nothing changes: not knowing must not refuse traffic."""

    def __init__(
        self,
        redis: aioredis.Redis,
        providers: Sequence[str],
        *,
        refresh_s: float = 2.0,
        grace_s: float = 3 * HEARTBEAT_S,
    ) -> None:
        self._redis = redis
        self._providers = tuple(providers)
        self._grace_s = grace_s
        self._absent_since: dict[str, float] = {}
        self._loop = Periodic("live-providers", refresh_s, self._refresh, at_start=True)

    def __call__(self, provider: str) -> bool:
        since = self._absent_since.get(provider)
        return since is None or time.monotonic() - since < self._grace_s

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _refresh(self) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for provider in self._providers:
                    pipe.hgetall(_key(provider))
                found = await pipe.execute()
        except REDIS_DOWN:
            return
        now = time.monotonic()
        for provider, raw in zip(self._providers, found, strict=True):
            if _live(raw):
                self._absent_since.pop(provider, None)
            else:
                self._absent_since.setdefault(provider, now)
