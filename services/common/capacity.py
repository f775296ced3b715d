"""A provider account's capacity, shared by every replica: concurrency, requests and tokens per
minute, the adaptive concurrency limit, and pauses a vendor asked for (Retry-After).

A call first ``acquire``s a grant (or is told how long to wait and why), and ``release``s it
with its outcome. Each is one Lua script reading the server's clock, so replicas never admit more
between them than the limits allow, and agree on windows even with skewed clocks.

- Concurrency: leases scored by their expiry; a crashed worker's leases free themselves after
  ``lease_s`` (callers keep leases short and ``renew`` those still in use). The limit adapts
  (AIMD): each ``ok`` adds 1/limit (about +1 per round of calls); a ``rate_limited`` sets it to
  half of what was in use (the calls in flight, or the limit if lower), at most once a second
  (the 429s of calls already in flight when the vendor started refusing are one signal, not
  many); every ``RECOVERY_S`` without a cut doubles it again. It lies in [min_concurrency,
  max_concurrency or DEFAULT_MAX_CONCURRENCY] and starts at the top: the vendor's refusals, not
  a slow start, find the account's real limit. The limit is fractional so that it can grow by
  1/limit; the number of slots is its whole part.
- Requests per minute: an exact sliding log, so no 60 s window ever holds more than ``rpm``
  admissions.
- Tokens per minute: tokens reserved per second, summed over the last 60 s; ``release``
  corrects the reservation to the tokens actually used. A call larger than the whole budget is
  admitted once nothing else is reserved, so it is slow rather than refused for ever.
- Lanes: the batch lane may use ``batch_share`` of each limit, counted against all traffic
  (in flight < slots * batch_share, and alike for rpm and tpm), so interactive calls keep the
  rest for themselves. (At a tiny limit, e.g. one slot and a share of 0.5, batch may still take
  the only slot when nothing else is in flight: batch is slowed, never starved.)

The limits are the caller's configuration, read from ``limits_for(account)`` on every call, so
a reloaded configuration applies at once; the learned concurrency limit is clamped to it. Requests
and tokens are only logged while the account has such a limit.

Redis keys (``<a>`` is the account), each with a TTL:

- ``sy:cap:pause:<a>``: epoch ms (server time) until which the account is paused; expires then.
- ``sy:cap:lease:<a>``: sorted set of lease ids scored by expiry.
- ``sy:cap:rpm:<a>``: sorted set of admissions (lease ids) scored by admission time; 61 s.
- ``sy:cap:tpm:<a>``: hash of epoch second -> tokens reserved in it; 61 s.
- ``sy:cap:aimd:<a>``: hash ``limit`` (float), ``cut_at`` (ms of the last halving); forgotten
  after ``ADAPTIVE_STATE_TTL_S`` without releases (the limit starts again at the top).

The scripts touch several keys, so they assume one Redis (as deployed), not Redis Cluster.
Redis errors (``services.common.redis_client.REDIS_DOWN``) propagate to the caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import redis.asyncio as aioredis

from contracts.topics import Lane
from services.common.redis_script import NOW_MS, RedisScript

DEFAULT_MAX_CONCURRENCY = 512
ADAPTIVE_STATE_TTL_S = 3600
# Each spell this long without a rate limit doubles the learned concurrency limit, up to its
# ceiling: additive increase alone would take thousands of calls to climb back from a cut made
# when little was in flight.
RECOVERY_S = 10.0
# The shortest wait ever suggested: below it a caller would only spin on Redis.
MIN_WAIT_S = 0.05
# A concurrency slot frees when any call in flight ends, which nothing here can foresee; the
# suggested wait is this, or sooner if the oldest lease expires sooner.
CONCURRENCY_RECHECK_S = 0.25

WaitReason = Literal["paused", "concurrency", "rpm", "tpm"]
Outcome = Literal["ok", "rate_limited", "error"]


@dataclass(frozen=True)
class AccountLimits:
    rpm: int | None = None
    tpm: int | None = None
    max_concurrency: int | None = None  # None: adaptive up to DEFAULT_MAX_CONCURRENCY
    min_concurrency: int = 1
    batch_share: float = 0.5

    def __post_init__(self) -> None:
        if self.min_concurrency < 1:
            raise ValueError("min_concurrency must be at least 1")
        if self.max_concurrency is not None and self.max_concurrency < self.min_concurrency:
            raise ValueError("max_concurrency must be at least min_concurrency")
        if not 0.0 <= self.batch_share <= 1.0:
            raise ValueError("batch_share must lie in [0, 1]")
        if (self.rpm is not None and self.rpm < 0) or (self.tpm is not None and self.tpm < 0):
            raise ValueError("rpm and tpm must not be negative")

    @property
    def ceiling(self) -> int:
        """The adaptive limit's top."""
        return DEFAULT_MAX_CONCURRENCY if self.max_concurrency is None else self.max_concurrency


@dataclass(frozen=True)
class Grant:
    account: str
    lease_id: str
    reserved_tokens: int
    bucket_s: int  # the epoch second (server time) the tokens were reserved in


@dataclass(frozen=True)
class Release:
    """How one grant's call ended (see ``Capacity.release``)."""

    grant: Grant
    outcome: Outcome
    actual_tokens: int | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Wait:
    wait_s: float  # an estimate of when trying again can succeed; at least MIN_WAIT_S
    reason: WaitReason


@dataclass(frozen=True)
class CapacityView:
    limit: float  # the adaptive concurrency limit
    in_flight: int
    rpm_used: int  # 0 when the account has no rpm limit (nothing is logged)
    tpm_used: int  # 0 when the account has no tpm limit
    paused_until_ms: int | None
    limits: AccountLimits


def _keys(account: str) -> tuple[str, str, str, str, str]:
    """pause, lease, rpm, tpm, aimd: the order every script takes them in."""
    return (
        f"sy:cap:pause:{account}",
        f"sy:cap:lease:{account}",
        f"sy:cap:rpm:{account}",
        f"sy:cap:tpm:{account}",
        f"sy:cap:aimd:{account}",
    )


# The scripts all take KEYS = _keys(account) and start with these helpers.
_PRELUDE = (
    NOW_MS
    + """
local function clamp(x, lo, hi)
  if x < lo then return lo end
  if x > hi then return hi end
  return x
end
-- The learned limit, and the time its calm spell is counted from. Every RECOVERY_MS without a
-- cut doubles it (one 429 at a quiet moment must not pin the account low for long).
local function adaptive_state(lo, hi)
  local state = redis.call('HMGET', KEYS[5], 'limit', 'calm_since')
  local limit = tonumber(state[1]) or hi
  local calm_since = tonumber(state[2]) or now_ms
  local periods = math.min(math.floor((now_ms - calm_since) / {recovery_ms}), 16)
  if periods > 0 then
    limit = limit * 2 ^ periods
    calm_since = calm_since + periods * {recovery_ms}
  end
  return clamp(limit, lo, hi), calm_since
end
local function adaptive_limit(lo, hi)
  local limit = adaptive_state(lo, hi)
  return limit
end
local function paused_until()
  return tonumber(redis.call('GET', KEYS[1]) or '0')
end
local function pause(until_ms)
  if until_ms > paused_until() then
    redis.call('SET', KEYS[1], until_ms, 'PXAT', until_ms)
  end
end
""".replace("{recovery_ms}", str(round(RECOVERY_S * 1000)))
)

# ARGV: share, tokens, lease_ms, lease_id, rpm (-1: none), tpm (-1: none), min, max.
# Returns {1, bucket_s} or {0, reason, wait_ms}.
_ACQUIRE = RedisScript(
    _PRELUDE
    + f"""
local share = tonumber(ARGV[1])
local paused = paused_until()
if paused > now_ms then
  return {{0, 'paused', paused - now_ms}}
end

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
local slots = math.floor(adaptive_limit(tonumber(ARGV[7]), tonumber(ARGV[8])))
if redis.call('ZCARD', KEYS[2]) >= slots * share then
  local wait = {round(CONCURRENCY_RECHECK_S * 1000)}
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if first[2] then
    wait = math.min(wait, tonumber(first[2]) - now_ms)
  end
  return {{0, 'concurrency', wait}}
end

local rpm = tonumber(ARGV[5])
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_ms - 60000)
  local used = redis.call('ZCARD', KEYS[3])
  local cap = rpm * share
  if used >= cap then
    local wait = 60000
    if used > 0 then
      -- How many admissions must leave the window before one more fits under the cap.
      local leave = math.min(math.floor(used - cap) + 1, used)
      local entry = redis.call('ZRANGE', KEYS[3], leave - 1, leave - 1, 'WITHSCORES')
      wait = tonumber(entry[2]) + 60000 - now_ms
    end
    return {{0, 'rpm', wait}}
  end
end

local tokens = tonumber(ARGV[2])
local second = math.floor(now_ms / 1000)
local tpm = tonumber(ARGV[6])
if tpm >= 0 then
  local fields = redis.call('HGETALL', KEYS[4])
  local used, buckets = 0, {{}}
  for i = 1, #fields, 2 do
    local s = tonumber(fields[i])
    if s <= second - 60 then
      redis.call('HDEL', KEYS[4], fields[i])
    else
      local n = tonumber(fields[i + 1])
      used = used + n
      buckets[#buckets + 1] = {{s, n}}
    end
  end
  local cap = tpm * share
  if used > 0 and used + tokens > cap then
    table.sort(buckets, function(a, b) return a[1] < b[1] end)
    local left, wait = used, 60000
    for _, bucket in ipairs(buckets) do
      left = left - bucket[2]
      if left <= 0 or left + tokens <= cap then
        wait = (bucket[1] + 60) * 1000 - now_ms
        break
      end
    end
    return {{0, 'tpm', wait}}
  end
end

local lease_ms = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], now_ms + lease_ms, ARGV[4])
if redis.call('PTTL', KEYS[2]) < lease_ms + 1000 then
  redis.call('PEXPIRE', KEYS[2], lease_ms + 1000)
end
if rpm >= 0 then
  redis.call('ZADD', KEYS[3], now_ms, ARGV[4])
  redis.call('PEXPIRE', KEYS[3], 61000)
end
if tpm >= 0 then
  redis.call('HINCRBY', KEYS[4], second, tokens)
  redis.call('PEXPIRE', KEYS[4], 61000)
end
return {{1, second}}
"""
)

# Ending one grant's call: free its slot, correct its tokens, adapt the limit, maybe pause.
# (The ZCOUNT before the cut sees the leases not yet freed: in a batch, later ones count.)
_RELEASE_ONE = f"""
local function release(lease_id, outcome, correction, bucket, retry_after_ms, lo, hi)
  redis.call('ZREM', KEYS[2], lease_id)
  if correction ~= '' then
    -- A reservation that already left the window (or was never logged) has nothing to correct.
    if tonumber(bucket) > math.floor(now_ms / 1000) - 60
        and redis.call('HEXISTS', KEYS[4], bucket) == 1 then
      if redis.call('HINCRBY', KEYS[4], bucket, correction) < 0 then
        redis.call('HSET', KEYS[4], bucket, 0)
      end
    end
  end
  if outcome ~= 'error' then
    local limit, calm_since = adaptive_state(lo, hi)
    if outcome == 'ok' then
      redis.call(
        'HSET', KEYS[5], 'limit', tostring(clamp(limit + 1 / limit, lo, hi)),
        'calm_since', calm_since)
    else
      local cut_at = tonumber(redis.call('HGET', KEYS[5], 'cut_at')) or 0
      if now_ms - cut_at >= 1000 then
        -- Half of what the vendor refused: the calls in flight (this one included), when
        -- that is below the limit. Halving an unused limit of 512 would not slow 40 callers.
        local in_use = redis.call('ZCOUNT', KEYS[2], string.format('(%d', now_ms), '+inf') + 1
        local cut = math.min(limit, in_use) * 0.5
        redis.call(
          'HSET', KEYS[5], 'limit', tostring(clamp(cut, lo, hi)), 'cut_at', now_ms,
          'calm_since', now_ms)
      end
    end
    redis.call('EXPIRE', KEYS[5], {ADAPTIVE_STATE_TTL_S})
  end
  retry_after_ms = tonumber(retry_after_ms)
  if retry_after_ms >= 0 then
    pause(now_ms + retry_after_ms)
  end
end
"""

# ARGV: min, max, then per grant: lease_id, outcome, token correction ('' for none), bucket_s,
# retry_after_ms (-1: none).
_RELEASE = RedisScript(
    _PRELUDE
    + _RELEASE_ONE
    + """
local lo, hi = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 3, #ARGV, 5 do
  release(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], lo, hi)
end
return 1
"""
)

# ARGV: lease_ms, lease ids... Extends the leases still held; an expired one stays gone.
_RENEW = RedisScript(
    NOW_MS
    + """
local lease_ms = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[2], 'XX', now_ms + lease_ms, ARGV[i])
end
-- The set itself must outlive the leases it holds: when nothing new is admitted (the account
-- is saturated), only renewals keep it.
if redis.call('PTTL', KEYS[2]) < lease_ms + 1000 then
  redis.call('PEXPIRE', KEYS[2], lease_ms + 1000)
end
return 1
"""
)

# ARGV: pause_ms.
_PAUSE = RedisScript(
    _PRELUDE
    + """
pause(now_ms + tonumber(ARGV[1]))
return 1
"""
)

# ARGV: min, max. Returns {limit (text), in_flight, rpm_used, tpm_used, paused_until or -1}.
_VIEW = RedisScript(
    _PRELUDE
    + """
local in_flight = redis.call('ZCOUNT', KEYS[2], string.format('(%d', now_ms), '+inf')
local rpm_used = redis.call('ZCOUNT', KEYS[3], string.format('(%d', now_ms - 60000), '+inf')
local second = math.floor(now_ms / 1000)
local fields = redis.call('HGETALL', KEYS[4])
local tpm_used = 0
for i = 1, #fields, 2 do
  if tonumber(fields[i]) > second - 60 then
    tpm_used = tpm_used + tonumber(fields[i + 1])
  end
end
local paused = paused_until()
if paused <= now_ms then
  paused = -1
end
local limit = adaptive_limit(tonumber(ARGV[1]), tonumber(ARGV[2]))
return {tostring(limit), in_flight, rpm_used, tpm_used, paused}
"""
)


def _ms(seconds: float) -> int:
    return max(round(seconds * 1000), 0)


def _wait(reason: bytes | str, wait_ms: int) -> Wait:
    text = reason.decode() if isinstance(reason, bytes) else reason
    return Wait(wait_s=max(wait_ms / 1000, MIN_WAIT_S), reason=cast(WaitReason, text))


class Capacity:
    def __init__(self, redis: aioredis.Redis, limits_for: Callable[[str], AccountLimits]) -> None:
        self._redis = redis
        self._limits_for = limits_for

    async def acquire(
        self, account: str, *, lane: Lane, tokens: int, lease_s: float
    ) -> Grant | Wait:
        """A grant for one call of about ``tokens`` tokens (prompt plus expected output), held
        at most ``lease_s``; or how long to wait, and why. Checks, in order: a pause, the
        concurrency limit, rpm, tpm; records nothing unless all pass."""
        if tokens < 0 or lease_s <= 0:
            raise ValueError("tokens must not be negative and lease_s must be positive")
        limits = self._limits_for(account)
        lease_id = uuid.uuid4().hex
        share = 1.0 if lane is Lane.INTERACTIVE else limits.batch_share
        reply = cast(
            "list[int | bytes]",
            await _ACQUIRE.run(
                self._redis,
                _keys(account),
                (
                    share,
                    tokens,
                    max(_ms(lease_s), 1),
                    lease_id,
                    -1 if limits.rpm is None else limits.rpm,
                    -1 if limits.tpm is None else limits.tpm,
                    limits.min_concurrency,
                    limits.ceiling,
                ),
            ),
        )
        if reply[0] == 1:
            return Grant(
                account=account,
                lease_id=lease_id,
                reserved_tokens=tokens,
                bucket_s=cast(int, reply[1]),
            )
        return _wait(cast(bytes, reply[1]), cast(int, reply[2]))

    async def release(
        self,
        grant: Grant,
        *,
        outcome: Outcome,
        actual_tokens: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        """End the grant's call: free its slot, correct its token reservation to
        ``actual_tokens``, adapt the concurrency limit to ``outcome``, and pause the account for
        everyone for ``retry_after_s`` (a longer pause already set is kept)."""
        await self.release_many([Release(grant, outcome, actual_tokens, retry_after_s)])

    async def release_many(self, releases: Sequence[Release]) -> None:
        """Several ``release``s in one round trip per account, applied in order."""
        by_account: dict[str, list[Release]] = {}
        for release in releases:
            by_account.setdefault(release.grant.account, []).append(release)
        for account, batch in by_account.items():
            limits = self._limits_for(account)
            args: list[str | int] = [limits.min_concurrency, limits.ceiling]
            for r in batch:
                args += [
                    r.grant.lease_id,
                    r.outcome,
                    "" if r.actual_tokens is None else r.actual_tokens - r.grant.reserved_tokens,
                    r.grant.bucket_s,
                    -1 if r.retry_after_s is None else _ms(r.retry_after_s),
                ]
            await _RELEASE.run(self._redis, _keys(account), args)

    async def renew(self, grants: Iterable[Grant], *, lease_s: float) -> None:
        """Extend the leases of grants whose calls are still running, by ``lease_s`` from now:
        leases can then be short, and a crashed worker's slots free themselves soon."""
        by_account: dict[str, list[str]] = {}
        for grant in grants:
            by_account.setdefault(grant.account, []).append(grant.lease_id)
        for account, lease_ids in by_account.items():
            await _RENEW.run(self._redis, _keys(account), (max(_ms(lease_s), 1), *lease_ids))

    async def pause(self, account: str, seconds: float) -> None:
        """Pause the account for everyone (a longer pause already set is kept)."""
        await _PAUSE.run(self._redis, _keys(account), (_ms(seconds),))

    async def view(self, account: str) -> CapacityView:
        limits = self._limits_for(account)
        limit, in_flight, rpm_used, tpm_used, paused = cast(
            "list[Any]",
            await _VIEW.run(self._redis, _keys(account), (limits.min_concurrency, limits.ceiling)),
        )
        return CapacityView(
            limit=float(limit),
            in_flight=int(in_flight),
            rpm_used=int(rpm_used),
            tpm_used=int(tpm_used),
            paused_until_ms=None if paused < 0 else int(paused),
            limits=limits,
        )
