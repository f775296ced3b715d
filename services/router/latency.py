"""What the workers observed of each model's latency, as the router's ranking reads it.

A snapshot in memory, refreshed in the background from the shared per-minute counters
(``services.common.provider_stats``) every few seconds, so the decision reads a dict and never
waits on Redis. A model with too few successful calls in the window has no figure here, and
ranking uses the quality table's prior for it instead.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from services.common.periodic import Periodic
from services.common.provider_stats import read_stats
from services.common.redis_client import REDIS_DOWN

log = logging.getLogger(__name__)

REFRESH_S = 5.0
WINDOW_MINUTES = 5
# Fewer successes than this in the window say little about a model's typical latency.
MIN_SAMPLES = 20


class ObservedLatency:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._p50: dict[str, float] = {}
        self._loop = Periodic("observed-latency", REFRESH_S, self.refresh)

    def latency_ms(self, canonical_id: str) -> float | None:
        return self._p50.get(canonical_id)

    async def refresh(self) -> None:
        try:
            stats = await read_stats(self._redis, minutes=WINDOW_MINUTES)
        except REDIS_DOWN as exc:
            # The last snapshot stays: latencies a minute old rank as well as fresh ones.
            log.warning("observed latencies not refreshed: %s", exc)
            return
        self._p50 = {
            key: view.p50_ms
            for key, view in stats.items()
            if view.p50_ms is not None and view.requests - view.errors >= MIN_SAMPLES
        }

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
