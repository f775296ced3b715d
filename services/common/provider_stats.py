"""Recent error rates and latencies per key (a model's canonical id), shared by every replica:
what the router weighs when it picks a target by health and latency.

Workers ``note`` each attempt's outcome in memory (no I/O on the call's path); a background task
adds what was noted to per-minute counters in Redis every ``flush_s``, in one round trip. Readers
merge the last few minutes of every replica's counters with ``read_stats``.

Redis keys (``<minute>`` is the epoch minute), each living ``STATS_TTL_S``:

- ``sy:stats:<minute>:<key>``: hash ``requests``, ``errors``, and a latency histogram of the
  successful attempts, ``le_5`` ... ``le_60000``, ``le_inf`` (attempts that took at most that
  many ms, and not at most the bound before: each field counts its own bucket only).
- ``sy:stats:keys:<minute>``: set of the keys noted in that minute, so listing them needs no
  SCAN.

Failed attempts count in the error rate, not in the latency: a vendor that fails at once would
otherwise look fast. Minutes are the noting replica's own clock; a replica a few seconds off files
a few attempts under the neighbouring minute, which no reader of a five-minute window can tell.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from services.common.periodic import Periodic

log = logging.getLogger(__name__)

# Upper bounds (ms) of the latency buckets, on a roughly logarithmic scale; one more bucket
# above the last holds everything slower.
BOUNDS_MS: tuple[int, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
STATS_TTL_S = 15 * 60
# Minute-and-key tallies held while Redis is away; beyond that, new ones are dropped (and the
# drop is logged). Tallies older than the TTL are dropped too: no reader would see them.
MAX_PENDING = 20_000

_FIELDS = (*(f"le_{bound}" for bound in BOUNDS_MS), "le_inf")
_FIELD_INDEX = {name: i for i, name in enumerate(_FIELDS)}


def _stats_key(minute: int, key: str) -> str:
    return f"sy:stats:{minute}:{key}"


def _index_key(minute: int) -> str:
    return f"sy:stats:keys:{minute}"


@dataclass(slots=True)
class _Tally:
    requests: int = 0
    errors: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(_FIELDS))

    def add(self, other: _Tally) -> None:
        self.requests += other.requests
        self.errors += other.errors
        for i, n in enumerate(other.buckets):
            self.buckets[i] += n


@dataclass(frozen=True)
class StatsView:
    requests: int
    errors: int
    error_rate: float  # errors / requests; 0.0 without requests
    # Latency percentiles of the successful attempts (None without any), interpolated linearly
    # within the histogram bucket the rank falls in (as Prometheus' histogram_quantile does);
    # a rank in the open top bucket reports its lower bound, BOUNDS_MS[-1].
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


def _text(value: bytes | str) -> str:
    """Clients built without ``decode_responses`` (the project's) answer bytes."""
    return value.decode() if isinstance(value, bytes) else value


def _minute_now() -> int:
    return int(time.time() // 60)


class AttemptStats:
    """A worker's tally of its attempts, flushed to Redis every ``flush_s``. ``note`` never
    does I/O and never raises; while Redis is away the tally keeps growing (bounded) and is
    flushed when Redis is back."""

    def __init__(self, redis: aioredis.Redis, *, flush_s: float = 1.0) -> None:
        self._redis = redis
        self._pending: dict[tuple[int, str], _Tally] = {}
        self._dropped = 0
        self._failing = False
        self._loop = Periodic("attempt-stats", flush_s, self._flush)

    def note(self, key: str, *, ok: bool, latency_ms: int) -> None:
        slot = (_minute_now(), key)
        tally = self._pending.get(slot)
        if tally is None:
            if len(self._pending) >= MAX_PENDING:
                self._dropped += 1
                return
            tally = self._pending[slot] = _Tally()
        tally.requests += 1
        if ok:
            tally.buckets[bisect.bisect_left(BOUNDS_MS, latency_ms)] += 1
        else:
            tally.errors += 1

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        """Stop flushing, after one last flush of what is left (lost if Redis is away)."""
        await self._loop.stop()
        await self._flush()

    async def _flush(self) -> None:
        oldest = _minute_now() - STATS_TTL_S // 60
        batch = {slot: tally for slot, tally in self._pending.items() if slot[0] >= oldest}
        # Notes made while the round trip is under way go to a new tally.
        self._pending = {}
        if self._dropped:
            log.warning("dropped %d attempt notes while Redis was away", self._dropped)
            self._dropped = 0
        if not batch:
            return
        try:
            await self._write(batch)
        except asyncio.CancelledError:
            self._merge_back(batch)
            raise
        except Exception:
            # Any failure: the flusher must outlive it, and the caller never sees it.
            self._merge_back(batch)
            if not self._failing:
                log.warning("flushing attempt stats failed; keeping them, retrying", exc_info=True)
                self._failing = True
            return
        if self._failing:
            log.info("attempt stats are flushed again")
            self._failing = False

    async def _write(self, batch: dict[tuple[int, str], _Tally]) -> None:
        keys_by_minute: dict[int, list[str]] = {}
        # MULTI: a flush is applied whole or not at all, so one that failed can be sent again
        # without counting any of it twice.
        async with self._redis.pipeline(transaction=True) as pipe:
            for (minute, key), tally in batch.items():
                keys_by_minute.setdefault(minute, []).append(key)
                name = _stats_key(minute, key)
                pipe.execute_command("HINCRBY", name, "requests", tally.requests)
                if tally.errors:
                    pipe.execute_command("HINCRBY", name, "errors", tally.errors)
                for i, count in enumerate(tally.buckets):
                    if count:
                        pipe.execute_command("HINCRBY", name, _FIELDS[i], count)
                pipe.execute_command("EXPIRE", name, STATS_TTL_S)
            for minute, keys in keys_by_minute.items():
                pipe.execute_command("SADD", _index_key(minute), *keys)
                pipe.execute_command("EXPIRE", _index_key(minute), STATS_TTL_S)
            await pipe.execute()

    def _merge_back(self, batch: dict[tuple[int, str], _Tally]) -> None:
        for slot, tally in batch.items():
            pending = self._pending.get(slot)
            if pending is not None:
                pending.add(tally)
            elif len(self._pending) < MAX_PENDING:
                self._pending[slot] = tally
            else:
                self._dropped += tally.requests


async def read_stats(
    redis: aioredis.Redis, *, minutes: int = 5, keys: Iterable[str] | None = None
) -> dict[str, StatsView]:
    """The merged counters of the last ``minutes`` minutes (the current, partial one included)
    for ``keys`` (each of them, with zeros if nothing was noted), or for every key noted in
    that time. One round trip for named keys, two otherwise."""
    if minutes < 1:
        raise ValueError("minutes must be at least 1")
    now = _minute_now()
    window = range(now - minutes + 1, now + 1)
    if keys is None:
        async with redis.pipeline(transaction=False) as pipe:
            for minute in window:
                pipe.smembers(_index_key(minute))
            members: list[set[bytes | str]] = await pipe.execute()
        slots = [
            (minute, _text(member))
            for minute, found in zip(window, members, strict=True)
            for member in found
        ]
        names = sorted({key for _, key in slots})
    else:
        names = list(dict.fromkeys(keys))
        slots = [(minute, key) for minute in window for key in names]
    tallies = {name: _Tally() for name in names}
    if slots:
        async with redis.pipeline(transaction=False) as pipe:
            for minute, key in slots:
                pipe.hgetall(_stats_key(minute, key))
            hashes: list[dict[bytes | str, bytes | str]] = await pipe.execute()
        for (_, key), fields in zip(slots, hashes, strict=True):
            tally = tallies[key]
            for name, value in fields.items():
                field_name = _text(name)
                if field_name == "requests":
                    tally.requests += int(value)
                elif field_name == "errors":
                    tally.errors += int(value)
                elif (i := _FIELD_INDEX.get(field_name)) is not None:
                    tally.buckets[i] += int(value)
    return {name: _view(tally) for name, tally in tallies.items()}


def _view(tally: _Tally) -> StatsView:
    return StatsView(
        requests=tally.requests,
        errors=tally.errors,
        error_rate=tally.errors / tally.requests if tally.requests else 0.0,
        p50_ms=_percentile(tally.buckets, 0.50),
        p95_ms=_percentile(tally.buckets, 0.95),
        p99_ms=_percentile(tally.buckets, 0.99),
    )


def _percentile(buckets: list[int], q: float) -> float | None:
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    below = 0
    for i, count in enumerate(buckets):
        if count and below + count >= rank:
            if i == len(BOUNDS_MS):
                return float(BOUNDS_MS[-1])
            lower = BOUNDS_MS[i - 1] if i > 0 else 0
            return lower + (BOUNDS_MS[i] - lower) * (rank - below) / count
        below += count
    return float(BOUNDS_MS[-1])  # not reached: the last non-empty bucket holds rank <= total
