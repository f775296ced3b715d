"""Circuit breakers shared by every replica: one per key (a model's canonical id such as
``openai/gpt-4o-mini``, or a whole provider), kept in Redis.

A circuit is *closed* until ``failures`` failures land within the last ``window_s`` seconds
(a sliding window); it is then *open* for ``cooldown_s``, refusing calls; after that it is
*half-open*: at most ``probes`` probe calls are let through at a time, ``probes`` successes in a
row close it, and a probe failure opens it for another cooldown. Every transition is one Lua
script reading the server's clock, so replicas never admit more probes than allowed and agree on
when a cooldown ends even if their own clocks disagree.

Redis keys (``<key>`` is the circuit's key; absent state means closed):

- ``sy:cb:s:<key>``: hash ``state`` (open | half_open), ``opened_at``, ``retry_at`` (epoch ms,
  server time), ``probe_ok`` (probe successes so far). Lives ``cooldown_s`` (or a probe lease)
  plus ``FORGET_AFTER_S``: a circuit nobody touches for that long is forgotten, i.e. closed.
- ``sy:cb:f:<key>``: sorted set of failure times (ms) in the window; TTL ``window_s`` + 1 s.
- ``sy:cb:p:<key>``: sorted set of probe leases scored by expiry; a probe whose worker died
  frees its slot when its lease (``cooldown_s``) ends.
- ``sy:cb:index``: sorted set of the keys of circuits not closed, scored by when their state
  expires, so ``views()`` lists them without a SCAN.

The scripts touch several keys, so they assume one Redis (as deployed), not Redis Cluster.

The hot path should not pay a Redis round trip per call for circuits that are closed (nearly all
of them): ``CircuitSnapshot`` keeps a per-process copy of the circuits that are not. Intended use::

    state = snapshot.state(key)
    probe = False
    if state is not CircuitState.CLOSED:
        admission = await circuits.admit(key)
        if not admission.allowed:
            ...  # next target of the plan; admission.retry_at_ms says until when
        probe = admission.probe
    ok = ...  # the call
    if not ok:
        await circuits.record(key, ok=False, probe=probe)  # failures always
    elif probe or state is not CircuitState.CLOSED:
        await circuits.record(key, ok=True, probe=probe)  # successes only when they matter

A circuit opened by another replica is seen here within ``refresh_s``; calls made in that gap
find it open when they record and change nothing.

Redis errors (``services.common.redis_client.REDIS_DOWN``) propagate from ``Circuits``; the
caller decides whether a call goes ahead while Redis is away (``CircuitSnapshot`` never raises).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

import redis.asyncio as aioredis

from services.common.periodic import Periodic
from services.common.redis_script import NOW_MS, RedisScript

log = logging.getLogger(__name__)

# How long an open or half-open circuit that nobody admits to or records for is kept, past its
# cooldown or probe lease. Long enough that an idle circuit still needs probes to close; short
# enough that Redis does not keep the state of a model nobody calls any more.
FORGET_AFTER_S = 600.0

_INDEX = "sy:cb:index"


def provider_circuit(provider: str) -> str:
    """The key of a provider's own circuit, which active health checks open and close (a
    model's circuit is keyed by its canonical id). While it is open, none of the provider's
    models is called."""
    return f"{provider}/*"


def _state_key(key: str) -> str:
    return f"sy:cb:s:{key}"


def _failures_key(key: str) -> str:
    return f"sy:cb:f:{key}"


def _probes_key(key: str) -> str:
    return f"sy:cb:p:{key}"


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class CircuitPolicy:
    failures: int = 5
    window_s: float = 30.0
    cooldown_s: float = 30.0
    probes: int = 2

    def __post_init__(self) -> None:
        if self.failures < 1 or self.probes < 1:
            raise ValueError("a circuit policy needs failures >= 1 and probes >= 1")
        if self.window_s <= 0 or self.cooldown_s <= 0:
            raise ValueError("a circuit policy needs a positive window and cooldown")


@dataclass(frozen=True)
class CircuitView:
    key: str
    state: CircuitState
    recent_failures: int  # failures within the policy's window
    opened_at_ms: int | None  # epoch ms, server time; None when closed
    retry_at_ms: int | None  # end of the cooldown; set only when OPEN


@dataclass(frozen=True)
class Admission:
    allowed: bool
    probe: bool  # the call is a probe: record() it with probe=True
    # When refused: the end of the cooldown (open), or the time by which a probe slot is free
    # at the latest (half-open, every probe slot taken: their leases' end).
    retry_at_ms: int | None


def _ms(seconds: float) -> int:
    return max(round(seconds * 1000), 1)


# Lua helper shared by the scripts that add to the index: its TTL covers its longest member.
_KEEP_INDEX = """
local function keep_index(index, until_ms)
  if redis.call('PTTL', index) < until_ms - now_ms then
    redis.call('PEXPIRE', index, until_ms - now_ms)
  end
end
"""

# KEYS: state, probes, index. ARGV: probes, lease_ms, forget_ms, lease member, circuit key.
# Returns {allowed, probe, retry_at_ms or -1}.
_ADMIT = RedisScript(
    NOW_MS
    + _KEEP_INDEX
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'retry_at')
if not h[1] then
  return {1, 0, -1}
end
if h[1] == 'open' then
  local retry_at = tonumber(h[2])
  if now_ms < retry_at then
    return {0, 0, retry_at}
  end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_ok', 0)
  redis.call('DEL', KEYS[2])
end
local lease_ms = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[1]) then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {0, 0, tonumber(first[2])}
end
redis.call('ZADD', KEYS[2], now_ms + lease_ms, ARGV[4])
redis.call('PEXPIRE', KEYS[2], lease_ms + 1000)
local keep = lease_ms + tonumber(ARGV[3])
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('ZADD', KEYS[3], now_ms + keep, ARGV[5])
keep_index(KEYS[3], now_ms + keep)
return {1, 1, -1}
"""
)

# KEYS: state, failures, probes, index. ARGV: ok, probe, failures, window_ms, cooldown_ms,
# probes, forget_ms, failure member, circuit key. Returns the state after the record.
_RECORD = RedisScript(
    NOW_MS
    + _KEEP_INDEX
    + """
local function open()
  local retry_at = now_ms + tonumber(ARGV[5])
  local keep = tonumber(ARGV[5]) + tonumber(ARGV[7])
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now_ms, 'retry_at', retry_at,
    'probe_ok', 0)
  redis.call('PEXPIRE', KEYS[1], keep)
  redis.call('DEL', KEYS[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now_ms)
  redis.call('ZADD', KEYS[4], now_ms + keep, ARGV[9])
  keep_index(KEYS[4], now_ms + keep)
  return 'open'
end
local h = redis.call('HMGET', KEYS[1], 'state', 'retry_at')
if h[1] == 'open' then
  -- Calls let through before it opened, finishing now: old news, whatever their outcome.
  if now_ms >= tonumber(h[2]) then
    return 'half_open'
  end
  return 'open'
end
if h[1] == 'half_open' then
  if ARGV[2] ~= '1' then
    return 'half_open'
  end
  -- Probes are counted, not named: any probe's record frees one slot.
  redis.call('ZPOPMIN', KEYS[3])
  if ARGV[1] ~= '1' then
    return open()
  end
  if redis.call('HINCRBY', KEYS[1], 'probe_ok', 1) >= tonumber(ARGV[6]) then
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
    redis.call('ZREM', KEYS[4], ARGV[9])
    return 'closed'
  end
  return 'half_open'
end
if ARGV[1] == '1' then
  return 'closed'
end
local window_ms = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms - window_ms)
redis.call('ZADD', KEYS[2], now_ms, ARGV[8])
redis.call('PEXPIRE', KEYS[2], window_ms + 1000)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  return open()
end
return 'closed'
"""
)

# KEYS: state and failures of each circuit, in pairs. ARGV: each circuit's window_ms.
# Returns {now_ms, then per circuit: state or '', opened_at or -1, retry_at or -1, failures}.
_VIEWS = RedisScript(
    NOW_MS
    + """
local out = {now_ms}
for i = 1, #ARGV do
  local h = redis.call('HMGET', KEYS[2 * i - 1], 'state', 'opened_at', 'retry_at')
  local since = string.format('(%d', now_ms - tonumber(ARGV[i]))
  out[#out + 1] = h[1] or ''
  out[#out + 1] = tonumber(h[2]) or -1
  out[#out + 1] = tonumber(h[3]) or -1
  out[#out + 1] = redis.call('ZCOUNT', KEYS[2 * i], since, '+inf')
end
return out
"""
)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _effective(stored: str, retry_at_ms: int | None, now_ms: float) -> CircuitState:
    """An open circuit whose cooldown has passed is half-open, though its stored state only
    changes when the next caller asks to be admitted."""
    if stored == CircuitState.OPEN and retry_at_ms is not None and now_ms >= retry_at_ms:
        return CircuitState.HALF_OPEN
    return CircuitState(stored) if stored else CircuitState.CLOSED


class Circuits:
    def __init__(self, redis: aioredis.Redis, policy_for: Callable[[str], CircuitPolicy]) -> None:
        self._redis = redis
        self._policy_for = policy_for

    async def admit(self, key: str) -> Admission:
        """May a call go to ``key`` now? Taking a probe slot is part of the answer."""
        policy = self._policy_for(key)
        reply = await _ADMIT.run(
            self._redis,
            (_state_key(key), _probes_key(key), _INDEX),
            (policy.probes, _ms(policy.cooldown_s), _ms(FORGET_AFTER_S), uuid.uuid4().hex, key),
        )
        allowed, probe, retry_at = cast("list[int]", reply)
        return Admission(
            allowed=bool(allowed), probe=bool(probe), retry_at_ms=None if retry_at < 0 else retry_at
        )

    async def record(self, key: str, *, ok: bool, probe: bool) -> CircuitState:
        """Record a call's outcome; returns the circuit's state after it. ``probe`` is the
        ``Admission.probe`` the call was let through with."""
        policy = self._policy_for(key)
        reply = await _RECORD.run(
            self._redis,
            (_state_key(key), _failures_key(key), _probes_key(key), _INDEX),
            (
                int(ok),
                int(probe),
                policy.failures,
                _ms(policy.window_s),
                _ms(policy.cooldown_s),
                policy.probes,
                _ms(FORGET_AFTER_S),
                uuid.uuid4().hex,
                key,
            ),
        )
        return CircuitState(_text(reply))

    async def views(self, keys: Iterable[str] | None = None) -> dict[str, CircuitView]:
        """The named circuits (closed ones included), or with ``None`` every circuit that is
        open or half-open."""
        return (await self._read(keys))[1]

    async def reset(self, key: str) -> None:
        """Close the circuit and forget its failures (an operator's override)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.execute_command("DEL", _state_key(key), _failures_key(key), _probes_key(key))
            pipe.execute_command("ZREM", _INDEX, key)
            await pipe.execute()

    async def _read(self, keys: Iterable[str] | None) -> tuple[int, dict[str, CircuitView]]:
        """The server's time (ms) and the circuits' views, as ``views``."""
        only_not_closed = keys is None
        if keys is None:
            members = await self._redis.execute_command(  # type: ignore[no-untyped-call]
                "ZRANGE", _INDEX, 0, -1
            )
            keys = [_text(member) for member in cast("list[bytes]", members)]
        names = list(dict.fromkeys(keys))
        script_keys: list[str] = []
        for name in names:
            script_keys += (_state_key(name), _failures_key(name))
        windows = [_ms(self._policy_for(name).window_s) for name in names]
        reply = await _VIEWS.run(self._redis, script_keys, windows)
        now_ms, *rows = cast("list[Any]", reply)
        views: dict[str, CircuitView] = {}
        for i, name in enumerate(names):
            stored, opened_at, retry_at, failures = rows[4 * i : 4 * i + 4]
            retry_at_ms = None if retry_at < 0 else int(retry_at)
            state = _effective(_text(stored), retry_at_ms, now_ms)
            if only_not_closed and state is CircuitState.CLOSED:
                continue  # its state expired since the index was read
            views[name] = CircuitView(
                key=name,
                state=state,
                recent_failures=int(failures),
                opened_at_ms=None if opened_at < 0 else int(opened_at),
                retry_at_ms=retry_at_ms if state is CircuitState.OPEN else None,
            )
        return int(now_ms), views


class CircuitSnapshot:
    """A per-process copy of the circuits that are not closed, refreshed every ``refresh_s``
    in the background, for the hot path (see the module docstring for the intended use).

    Cooldowns are compared with the server's clock as estimated from the last refresh (the
    server's time then, plus the time elapsed here since), so a skewed local clock does not
    end a cooldown early or late. While Redis is away the last copy is kept and the refresh is
    retried; nothing is raised.
    """

    def __init__(self, circuits: Circuits, *, refresh_s: float = 0.5) -> None:
        self._circuits = circuits
        self._views: dict[str, CircuitView] = {}
        self._server_ms = 0
        self._taken_at = time.monotonic()
        self._failing = False
        # The first copy is loaded in start(), when Redis answers.
        self._loop = Periodic("circuit-snapshot", refresh_s, self._refresh, at_start=True)

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    def blocked(self, key: str) -> int | None:
        """The end of ``key``'s cooldown (epoch ms, server time) while it is open; else None."""
        view = self._views.get(key)
        if view is None or view.retry_at_ms is None:
            return None
        return view.retry_at_ms if self._now_ms() < view.retry_at_ms else None

    def state(self, key: str) -> CircuitState:
        view = self._views.get(key)
        if view is None:
            return CircuitState.CLOSED
        return _effective(view.state, view.retry_at_ms, self._now_ms())

    def _now_ms(self) -> float:
        return self._server_ms + (time.monotonic() - self._taken_at) * 1000

    async def _refresh(self) -> None:
        try:
            sent_at = time.monotonic()
            server_ms, views = await self._circuits._read(None)
            # The server read its clock somewhere in the round trip: assume half-way.
            taken_at = (sent_at + time.monotonic()) / 2
        except asyncio.CancelledError:
            raise
        except Exception:
            # Any failure, not only Redis being away: a refresher that died would leave the
            # hot path trusting a copy that never changes again.
            if not self._failing:
                log.warning(
                    "refreshing the circuit snapshot failed; keeping the last one, retrying",
                    exc_info=True,
                )
                self._failing = True
            return
        if self._failing:
            log.info("the circuit snapshot is refreshed again")
            self._failing = False
        self._views, self._server_ms, self._taken_at = views, server_ms, taken_at
