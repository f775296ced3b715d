"""A project's rate limits on one model, enforced across every ingress replica: requests and
tokens per minute and requests per day, as OpenAI's Admin API sets them on a project
(``max_requests_per_1_minute``, ``max_tokens_per_1_minute``, ``max_requests_per_1_day``).

``RateLimiter.admit`` is one Lua script: it checks every dimension that has a limit and, only
when all of them fit, counts the request in all of them. It answers with a ``RateDecision``
holding the figures of OpenAI's ``x-ratelimit-*`` headers and, when refused, the dimension that
refused and how long until the request would fit (``Retry-After``).

The algorithm: a sliding window counter. Each dimension keeps the count of the current fixed
window (a calendar minute or day, server time) and of the one before, and estimates the count
over the sliding window ending now as ``previous * (share of the previous window the sliding
window still overlaps) + current``. A request fits when that estimate plus its cost is within
the limit.

- Not a sliding log (as ``services.common.capacity`` keeps for a provider's rpm): a log is
  exact, but holds one entry per request in the window, so a limit of 10,000 requests a day
  holds 10,000 entries per project and model and every check trims and counts them, and tokens
  cannot be logged one by one at all. The counter holds three numbers per dimension: O(1).
- Not a token bucket: it is as cheap, and would do. The counter is kept because its state is
  the limits' own terms (so many this minute, this day), which the ``remaining`` figures report
  as they are, and one rule serves the minute and the day alike.
- The error of the approximation: it takes the previous window's requests as spread evenly over
  it. It never lets one fixed window hold more than the limit, so no true sliding window holds
  more than twice the limit, and that only when a whole window's worth arrived in the last
  instant of one window and the next is filled as late as it allows; after a burst, admissions
  trickle at the limit's own pace instead of the fixed window's double burst at the boundary.
  For traffic roughly even over a minute the error is small (Cloudflare, measuring this very
  scheme over 400 million requests, found 0.003% of them wrongly allowed or refused).

A refused request consumes nothing, in any dimension. A refusal on tokens must not eat a request
of the per-minute or per-day budget for a call that was never made, and ``retry_after_s`` stays
true: a client that waits as long as it was told is admitted then (if nobody else took the room),
rather than pushed further back by its own refused attempts. (OpenAI counts unsuccessful
requests against the per-minute limits; Switchyard refuses before doing any work, so a refusal
costs nothing worth charging.)

Windows are read from the server's clock (``NOW_MS``), never the caller's: replicas whose clocks
disagree would otherwise disagree on which window is current, and one replica rolling a window
over would throw away counts that another still considers current.

A request whose cost alone exceeds a limit can never fit: ``tokens`` above the tokens-per-minute
limit (or any request against a limit of 0). It is refused with ``retry_after_s`` None and
``limited_by`` that dimension (TOKENS for the oversized request); the caller answers it as a
request error (OpenAI's 400 "Request too large"), not a 429 to retry.

Redis keys (``<p>`` the project, ``<m>`` the model), one hash per dimension with a limit:
``sy:rl:{<p>}:rpm:<m>``, ``sy:rl:{<p>}:tpm:<m>``, ``sy:rl:{<p>}:rpd:<m>``, each holding ``w``
(the index of the current window), ``c`` (its count) and ``p`` (the previous window's count).
The window index is in the hash, not in the key's name, because it comes from the server's clock
inside the script and a script must be given every key it touches. The keys share the hash tag
``{<p>}``, so they lie in one Redis Cluster slot, and expire two windows after their last write
(by then both counts are out of every window). Redis errors
(``services.common.redis_client.REDIS_DOWN``) propagate; the caller decides whether to fail open.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import cast

import redis.asyncio as aioredis

from services.common.redis_script import NOW_MS, RedisScript


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A project's limits on one model; None: no limit in that dimension."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    requests_per_day: int | None = None

    def __post_init__(self) -> None:
        for value in (self.requests_per_minute, self.tokens_per_minute, self.requests_per_day):
            if value is not None and value < 0:
                raise ValueError("rate limits must not be negative")

    @property
    def unlimited(self) -> bool:
        return (
            self.requests_per_minute is None
            and self.tokens_per_minute is None
            and self.requests_per_day is None
        )


class Dimension(StrEnum):
    REQUESTS = "requests"
    TOKENS = "tokens"
    REQUESTS_PER_DAY = "requests_per_day"


# The order of the script's keys, limits and results.
_DIMENSIONS = (Dimension.REQUESTS, Dimension.TOKENS, Dimension.REQUESTS_PER_DAY)


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    # The dimension that refused (of several: one the request can never fit, else the one
    # with the longest wait); None when allowed.
    limited_by: Dimension | None
    # OpenAI's x-ratelimit-* headers, per minute; None where there is no such limit. After this
    # request when allowed, as they stand when refused. ``reset``: how long until the count is
    # back to zero if nothing more is admitted.
    limit_requests: int | None
    remaining_requests: int | None
    reset_requests_s: float | None
    limit_tokens: int | None
    remaining_tokens: int | None
    reset_tokens_s: float | None
    # When refused: how long until this request would fit, if nothing else is admitted meanwhile;
    # None when allowed, and when it can never fit (its cost alone exceeds the limit).
    retry_after_s: float | None


_UNLIMITED = RateDecision(
    allowed=True,
    limited_by=None,
    limit_requests=None,
    remaining_requests=None,
    reset_requests_s=None,
    limit_tokens=None,
    remaining_tokens=None,
    reset_tokens_s=None,
    retry_after_s=None,
)


def _keys(project: str, model: str) -> tuple[str, str, str]:
    """requests, tokens, requests per day: the order of ``_DIMENSIONS``. The model comes last, so
    that whatever it holds the names stay unambiguous."""
    tag = f"sy:rl:{{{project}}}"
    return (f"{tag}:rpm:{model}", f"{tag}:tpm:{model}", f"{tag}:rpd:{model}")


# KEYS: _keys(project, model). ARGV: minute_ms, day_ms, then the limits of the three dimensions
# (-1: none), then the request's tokens.
# Returns {allowed, refusing dimension (1-3, 0: none), wait_ms (-1: none or never),
#          remaining requests, reset requests ms, remaining tokens, reset tokens ms} (-1: no limit).
#
# Counts are compared multiplied by the window's length, so that every figure stays an integer
# (exact in Lua's doubles up to 2^53: a limit of 10^8 tokens times 60,000 ms is 6 * 10^12).
_ADMIT = RedisScript(
    NOW_MS
    + """
local minute_ms, day_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local windows = {minute_ms, minute_ms, day_ms}
local costs = {1, tonumber(ARGV[6]), 1}
local dims = {}
local refused, refused_wait = 0, 0

for i = 1, 3 do
  local limit = tonumber(ARGV[2 + i])
  if limit >= 0 then
    local w = windows[i]
    local idx = math.floor(now_ms / w)
    local e = now_ms - idx * w  -- elapsed in the current window
    local h = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
    local stored = tonumber(h[1])
    local c, p = 0, 0
    if stored == idx then
      c, p = tonumber(h[2]), tonumber(h[3])
    elseif stored == idx - 1 then
      p = tonumber(h[2])  -- the window rolled over: the current count is the previous one
    end
    local n = costs[i]
    -- wait: 0 fits now, -1 never fits, else ms until the weighted count lets n in.
    local wait = 0
    if n > limit then
      wait = -1
    elseif p * (w - e) + (c + n) * w > limit * w then
      if c + n > limit then
        -- The current window alone is too full: wait for the next one, then for this window's
        -- count (the previous one by then) to weigh little enough. n <= limit, so c > 0.
        wait = (w - e) + math.ceil(w * (c + n - limit) / c)
      else
        -- The previous window's weight must fall until p * (w - e') <= (limit - c - n) * w;
        -- p > 0, since the request would fit without it.
        wait = math.ceil(w * (p - (limit - c - n)) / p) - e
      end
    end
    dims[i] = {limit = limit, w = w, idx = idx, e = e, c = c, p = p, n = n}
    -- The dimension that refuses is the one that can never fit, or else the longest wait.
    if wait ~= 0 and refused_wait ~= -1 and (wait == -1 or wait > refused_wait) then
      refused, refused_wait = i, wait
    end
  end
end

if refused == 0 then
  for i, d in pairs(dims) do
    d.c = d.c + d.n
    redis.call('HSET', KEYS[i], 'w', d.idx, 'c', d.c, 'p', d.p)
    redis.call('PEXPIRE', KEYS[i], 2 * d.w)
  end
end

local function headers(d)
  if not d then
    return -1, -1
  end
  local remaining = math.floor((d.limit * d.w - d.p * (d.w - d.e) - d.c * d.w) / d.w)
  -- The current count weighs until the end of the next window, the previous one until the end
  -- of this one.
  local reset = 0
  if d.c > 0 then
    reset = 2 * d.w - d.e
  elseif d.p > 0 then
    reset = d.w - d.e
  end
  return math.max(remaining, 0), reset
end
local remaining_requests, reset_requests = headers(dims[1])
local remaining_tokens, reset_tokens = headers(dims[2])
local allowed = 1
if refused ~= 0 then
  allowed = 0
else
  refused_wait = -1
end
return {allowed, refused, refused_wait,
        remaining_requests, reset_requests, remaining_tokens, reset_tokens}
"""
)


def _optional(value: int) -> int | None:
    return None if value < 0 else value


def _seconds(ms: int) -> float | None:
    return None if ms < 0 else ms / 1000


class RateLimiter:
    def __init__(
        self, redis: aioredis.Redis, *, minute_ms: int = 60_000, day_ms: int = 86_400_000
    ) -> None:
        """``minute_ms`` and ``day_ms``: the windows' lengths, shortened only by tests."""
        if minute_ms <= 0 or day_ms <= 0:
            raise ValueError("rate limit windows must be positive")
        self._redis = redis
        self._minute_ms = minute_ms
        self._day_ms = day_ms

    async def admit(
        self, project: str, model: str, *, tokens: int, limit: RateLimit
    ) -> RateDecision:
        """Admit one request of ``project`` to ``model`` charged ``tokens`` (what OpenAI counts
        at admission: the prompt's tokens plus the most the reply may use), counting it in every
        limited dimension; or refuse it and count nothing. An unlimited project is allowed
        without asking Redis."""
        if tokens < 0:
            raise ValueError("tokens must not be negative")
        if not project or "{" in project or "}" in project:
            # The project is the keys' hash tag: braces in it would end the tag early, and two
            # projects could then share keys.
            raise ValueError(f"a project id must be non-empty and hold no braces: {project!r}")
        if limit.unlimited:
            return _UNLIMITED
        reply = cast(
            "list[int]",
            await _ADMIT.run(
                self._redis,
                _keys(project, model),
                (
                    self._minute_ms,
                    self._day_ms,
                    -1 if limit.requests_per_minute is None else limit.requests_per_minute,
                    -1 if limit.tokens_per_minute is None else limit.tokens_per_minute,
                    -1 if limit.requests_per_day is None else limit.requests_per_day,
                    tokens,
                ),
            ),
        )
        (
            allowed,
            refused,
            wait_ms,
            remaining_requests,
            reset_requests,
            remaining_tokens,
            reset_tokens,
        ) = reply
        return RateDecision(
            allowed=allowed == 1,
            limited_by=None if refused == 0 else _DIMENSIONS[refused - 1],
            limit_requests=limit.requests_per_minute,
            remaining_requests=_optional(remaining_requests),
            reset_requests_s=_seconds(reset_requests),
            limit_tokens=limit.tokens_per_minute,
            remaining_tokens=_optional(remaining_tokens),
            reset_tokens_s=_seconds(reset_tokens),
            retry_after_s=_seconds(wait_ms),
        )
