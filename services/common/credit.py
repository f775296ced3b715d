"""Prepaid credit and monthly spend limits at admission: the ledger in Redis that every ingress
replica shares, so that no two of them can spend one balance twice.

The truth lives elsewhere: grants are records on the governance topic (every ingress follows
them in memory and passes their sum to ``hold``), and settled spend is in ClickHouse. Redis holds
a cache of that spend, per project, which metering keeps current (``settle``) and rebuilds from
ClickHouse when it is missing (``init``). Grants and the spend limit are arguments, never stored:
a new grant or limit applies on the next call of every replica, with nothing to invalidate.

**Holds.** A request's cost is known only once its vendor answered, and many requests of one
project run at once on different replicas. Each therefore first reserves an estimate of its cost
(a hold), and the check is against ``granted - spent - held``: one Lua script reads and reserves
in one step, so concurrent requests cannot each see the same balance and jointly overdraw it.
The spend limit is checked alike: ``month spent + held + amount <= limit``.

**Integer nano-USD, rounded up.** Redis counts in integers (``HINCRBY`` is exact to int64,
about $9.2 billion) and Lua's numbers are doubles, exact only to 2^53 (about $9 million). So
amounts are integer nano-USD, stored and changed only with ``HINCRBY``; comparisons split each
figure into its last nine digits and the rest (both exact in a double), so they are exact at any
size too. A nano-USD is finer than any per-token price ($0.075 per million tokens is 75 nano-USD
a token), and converting a cost rounds it up: the cache may over-count a cost by a nano-USD,
never under-count it, so the balance it shows is never more than there is.

**Close and settle: a hold outlives the costs it stands for.** A hold is released only once
every vendor attempt of its request is in ``spent``. The ingress ``close``s the request with how
many attempts it made (each produces exactly one usage event); metering ``settle``s each event
after inserting it into ClickHouse, which adds its cost to ``spent`` and counts it against the
hold. Whichever comes last (the close, or the last attempt's settle) releases the hold. Releasing
at the end of the request instead would, while metering lags, show the request's cost neither
as held nor as spent: the same balance could be spent twice.

**Expiry, the safety net.** A request whose ingress died is never closed, and an attempt whose
usage event was lost is never settled; such a hold would reserve credit for ever. Each hold
therefore carries an expiry (epoch ms, compared with the server's clock), set by the caller past
the request's deadline plus metering's usual lag; ``hold`` purges up to 64 expired holds of its
project first (bounded, so one call's script stays short; the next calls purge the rest).

**Readiness and rebuilds.** This project's Redis keeps nothing on disk, and metering may crash
between inserting an event into ClickHouse and settling it. A ledger is trusted only while its
``ready`` flag is set: without it ``hold`` answers ``NOT_READY`` (the caller decides whether to
admit, and calls ``request_rebuild``), and metering, which pops ``pending_rebuilds``, reads the
lifetime and current month's spend from ClickHouse and calls ``init``. A settle on a ledger that
is not ready leaves ``spent`` alone (ClickHouse already has that event: metering settles after
inserting) but still counts towards its hold. Metering calls ``forget_ready`` when it starts, so
every ledger it may have left short is rebuilt. Metering must not settle a project's charges
between reading its spend from ClickHouse and calling ``init`` (an event inserted after the read
would be counted by neither); a rebuild done by the same loop that inserts and settles is safe.
``settle`` is not idempotent: a settle retried after a lost reply may count a cost twice, which
over-counts (the safe direction) until the next rebuild.

Redis keys (``<P>`` is the project; every key of a project carries the hash tag ``{<P>}``, so
each script touches one slot, as Redis Cluster requires):

- ``sy:credit:{<P>}``: hash ``ready`` ("1" once initialised), ``spent`` (lifetime settled
  nano-USD), ``held`` (sum of the open holds), ``m:<YYYY-MM>`` (settled nano-USD in that month,
  UTC).
- ``sy:credit:{<P>}:holds``: hash request id -> ``amount:settled:expected`` (``expected``, the
  number of attempts, is empty until the request is closed).
- ``sy:credit:{<P>}:expiry``: sorted set of request ids scored by their hold's expiry (epoch ms).
- ``sy:credit:rebuild``: set of projects waiting for a rebuild (global, so touched from Python,
  never from a project's script).

None of them expires: a ledger is the only copy of its holds. Redis errors
(``services.common.redis_client.REDIS_DOWN``) propagate to the caller, who decides whether to
admit a request while Redis is away.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import cast

import redis.asyncio as aioredis

from services.common.redis_script import NOW_MS, RedisScript

__all__ = [
    "NANOS_PER_USD",
    "Charge",
    "CreditLedger",
    "HoldOutcome",
    "HoldResult",
    "LedgerSnapshot",
    "month_of",
    "nanos_to_usd",
    "usd_to_nanos_ceil",
]

NANOS_PER_USD = 10**9  # amounts in Redis are integer nano-USD (int64 holds $9.2 billion)
_NANO_DIGITS = 9
_INT64_MAX = 2**63 - 1

REBUILD_KEY = "sy:credit:rebuild"
# Every project's ledger hash and nothing else: its holds and expiry keys end in ":holds" and
# ":expiry", never in "}" (braces are not special in Redis' glob).
_LEDGER_PATTERN = "sy:credit:{*}"
# Expired holds purged per hold call: bounds the script's run (Redis serves nothing else
# meanwhile); the rest go on later calls.
PURGE_BATCH = 64
# HDELs sent per round trip by forget_ready.
_FORGET_BATCH = 500

_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def usd_to_nanos_ceil(usd: Decimal) -> int:
    """``usd`` in nano-USD, rounded up (towards +infinity): the cache never under-counts a cost.
    Exact for any Decimal: integer arithmetic on its digits, no decimal context involved."""
    if not isinstance(usd, Decimal):  # a float here would already have lost its exact value
        raise TypeError(f"usd must be a Decimal, not {type(usd).__name__}")
    if not usd.is_finite():
        raise ValueError(f"usd must be finite, not {usd}")
    sign, digits, exponent = usd.as_tuple()
    coefficient = int("".join(map(str, digits)) or "0")
    if sign:
        coefficient = -coefficient
    shift = cast(int, exponent) + _NANO_DIGITS
    scale: int = 10 ** abs(shift)
    if shift >= 0:
        return coefficient * scale
    return -(-coefficient // scale)  # ceiling division


def nanos_to_usd(nanos: int) -> Decimal:
    """``nanos`` in USD, exactly, with nine decimal places."""
    sign, digits, _ = Decimal(nanos).as_tuple()
    return Decimal((sign, digits, -_NANO_DIGITS))


def month_of(ts_ms: int) -> str:
    """The calendar month (UTC) of an epoch-ms instant, as ``YYYY-MM``."""
    moment = _EPOCH + timedelta(milliseconds=ts_ms)
    return f"{moment.year:04d}-{moment.month:02d}"


class HoldOutcome(StrEnum):
    HELD = "held"
    NO_CREDIT = "no_credit"
    OVER_SPEND_LIMIT = "over_spend_limit"
    NOT_READY = "not_ready"  # the ledger is not (re)built: request_rebuild, the caller decides


@dataclass(frozen=True, slots=True)
class HoldResult:
    """The figures as the hold found them, before it (for a repeated hold, whose amount is
    already held: as they are now)."""

    outcome: HoldOutcome
    # granted - spent - held; None when no credit was given, or the ledger is not ready (its
    # spend is not known).
    available_nanos: int | None
    month_spent_nanos: int
    held_nanos: int


@dataclass(frozen=True, slots=True)
class Charge:
    """One vendor attempt's settled cost (one usage event, already in ClickHouse)."""

    project: str
    request_id: str
    cost_nanos: int
    month: str  # YYYY-MM (UTC) the cost counts in: month_of(the event's time)


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    ready: bool
    spent_nanos: int
    month_spent_nanos: int
    held_nanos: int
    open_holds: int


def _check_project(project: str) -> str:
    # A brace would move the hash tag, and the ledger pattern of forget_ready relies on none.
    if not project or "{" in project or "}" in project:
        raise ValueError(f"a project id must be non-empty and hold no braces: {project!r}")
    return project


def _check_month(month: str) -> str:
    if not _MONTH.fullmatch(month):
        raise ValueError(f"month must be YYYY-MM: {month!r}")
    return month


def _check_nanos(name: str, value: int) -> int:
    # Redis refuses (mid-script, after earlier writes) an HINCRBY that leaves int64.
    if not 0 <= value <= _INT64_MAX:
        raise ValueError(f"{name} must lie in [0, 2**63 - 1]: {value}")
    return value


def _keys(project: str) -> tuple[str, str, str]:
    """ledger, holds, expiry: the order every script takes them in."""
    tagged = f"sy:credit:{{{_check_project(project)}}}"
    return tagged, f"{tagged}:holds", f"{tagged}:expiry"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# Every script takes KEYS = _keys(project) and starts with these helpers. Figures stay decimal
# text from Redis to Redis (HINCRBY adds them); a Lua number never stands for an amount.
_PRELUDE = (
    NOW_MS
    + """
local BASE = 1000000000
local CLOSED_HOLD_MS = 86400000
-- An integer (decimal text) as its leading digits and its last nine: both exact in a double,
-- as are the sums of a few of them.
local function split(text)
  local sign = 1
  if string.sub(text, 1, 1) == '-' then
    sign, text = -1, string.sub(text, 2)
  end
  local cut = #text - 9
  if cut <= 0 then
    return 0, sign * tonumber(text)
  end
  return sign * tonumber(string.sub(text, 1, cut)), sign * tonumber(string.sub(text, cut + 1))
end
-- Whether total minus every part is below zero, exactly: carried into the high part, the low
-- part lies in [0, BASE), so the sign is the high part's.
local function short_of(total, parts)
  local high, low = split(total)
  for _, part in ipairs(parts) do
    local h, l = split(part)
    high, low = high - h, low - l
  end
  return high + math.floor(low / BASE) < 0
end
local function negated(text)
  if text == '0' then
    return '0'  -- HINCRBY refuses '-0'
  end
  return '-' .. text
end
local function parse(hold)
  return string.match(hold, '^([^:]*):([^:]*):(.*)$')
end
local function release(request_id, amount)
  redis.call('HDEL', KEYS[2], request_id)
  redis.call('ZREM', KEYS[3], request_id)
  -- With no hold left, held is exactly 0; below 0 it has drifted (a ledger hash lost without
  -- its holds): neither may leave more credit available than there is.
  if redis.call('HLEN', KEYS[2]) == 0 then
    redis.call('HSET', KEYS[1], 'held', '0')
  elseif redis.call('HINCRBY', KEYS[1], 'held', negated(amount)) < 0 then
    redis.call('HSET', KEYS[1], 'held', '0')
  end
end
"""
)

# ARGV: request_id, amount, granted ('' none), month limit ('' none), month field,
# expires_at_ms. Returns {outcome, spent, month spent, held}, figures before the hold.
_HOLD = RedisScript(
    _PRELUDE
    + f"""
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now_ms, 'LIMIT', 0, {PURGE_BATCH})
for _, request_id in ipairs(due) do
  local hold = redis.call('HGET', KEYS[2], request_id)
  if hold then
    local amount = parse(hold)
    release(request_id, amount)
  else
    redis.call('ZREM', KEYS[3], request_id)
  end
end

local state = redis.call('HMGET', KEYS[1], 'ready', 'spent', 'held', ARGV[5])
local spent, held, month_spent = state[2] or '0', state[3] or '0', state[4] or '0'
local function answer(outcome)
  return {{outcome, spent, month_spent, held}}
end
if state[1] ~= '1' then
  return answer('not_ready')
end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return answer('held')
end
local amount = ARGV[2]
if ARGV[3] ~= '' and short_of(ARGV[3], {{spent, held, amount}}) then
  return answer('no_credit')
end
if ARGV[4] ~= '' and short_of(ARGV[4], {{month_spent, held, amount}}) then
  return answer('over_spend_limit')
end
redis.call('HSET', KEYS[2], ARGV[1], amount .. ':0:')
redis.call('HINCRBY', KEYS[1], 'held', amount)
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
return answer('held')
"""
)

# ARGV: request_id, attempts, known cost ('' unknown). Returns 1 if the hold was released, 0
# otherwise.
_CLOSE = RedisScript(
    _PRELUDE
    + """
local hold = redis.call('HGET', KEYS[2], ARGV[1])
if not hold then
  return 0
end
local amount, settled = parse(hold)
local attempts = tonumber(ARGV[2])
if attempts == 0 or tonumber(settled) >= attempts then
  release(ARGV[1], amount)
  return 1
end
-- The answer's cost is known: only that much stays held until metering settles it, so that
-- credit is not kept from other requests by a maximum that was not used.
if ARGV[3] ~= '' and short_of(amount, {ARGV[3]}) == false and ARGV[3] ~= amount then
  redis.call('HINCRBY', KEYS[1], 'held', negated(amount))
  redis.call('HINCRBY', KEYS[1], 'held', ARGV[3])
  amount = ARGV[3]
end
redis.call('HSET', KEYS[2], ARGV[1], amount .. ':' .. settled .. ':' .. ARGV[2])
-- Ended, its cost on its way: the hold must outlast metering's lag, not the request's deadline
-- (lapsing before its cost is in spent would free credit twice). A day, so that a hold whose
-- charge never comes (an event lost past Kafka's retention) does not stay for ever.
redis.call('ZADD', KEYS[3], now_ms + CLOSED_HOLD_MS, ARGV[1])
return 0
"""
)

# ARGV: per charge, request_id, cost, month field.
_SETTLE = RedisScript(
    _PRELUDE
    + """
local ready = redis.call('HGET', KEYS[1], 'ready') == '1'
for i = 1, #ARGV, 3 do
  local request_id, cost = ARGV[i], ARGV[i + 1]
  -- Not ready: the rebuild reads ClickHouse, which already holds this event.
  if ready then
    redis.call('HINCRBY', KEYS[1], 'spent', cost)
    redis.call('HINCRBY', KEYS[1], ARGV[i + 2], cost)
  end
  local hold = redis.call('HGET', KEYS[2], request_id)
  if hold then
    local amount, settled, expected = parse(hold)
    settled = tonumber(settled) + 1
    if expected ~= '' and settled >= tonumber(expected) then
      release(request_id, amount)
    else
      redis.call('HSET', KEYS[2], request_id, amount .. ':' .. settled .. ':' .. expected)
    end
  end
end
return 1
"""
)

# ARGV: spent, month field, month spent. Returns 1 if it initialised the ledger, 0 if it was
# ready already.
_INIT = RedisScript(
    _PRELUDE
    + """
if redis.call('HGET', KEYS[1], 'ready') == '1' then
  return 0
end
-- Other months' figures were not rebuilt, so they are not trusted: gone.
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 2) == 'm:' and field ~= ARGV[2] then
    redis.call('HDEL', KEYS[1], field)
  end
end
-- The open holds are kept; held is summed again from them (with HINCRBY: exact), in case it
-- was lost or drifted apart from them.
redis.call('HSET', KEYS[1], 'held', '0')
local holds = redis.call('HGETALL', KEYS[2])
for i = 2, #holds, 2 do
  local amount = parse(holds[i])
  redis.call('HINCRBY', KEYS[1], 'held', amount)
end
redis.call('HSET', KEYS[1], 'spent', ARGV[1], ARGV[2], ARGV[3], 'ready', '1')
return 1
"""
)

# ARGV: month field. Returns {ready (1/0), spent, month spent, held, open holds}.
_SNAPSHOT = RedisScript(
    """
local state = redis.call('HMGET', KEYS[1], 'ready', 'spent', 'held', ARGV[1])
local ready = 0
if state[1] == '1' then
  ready = 1
end
return {ready, state[2] or '0', state[4] or '0', state[3] or '0', redis.call('HLEN', KEYS[2])}
"""
)


def _month_field(month: str) -> str:
    return f"m:{_check_month(month)}"


class CreditLedger:
    """Each project's credit ledger in Redis (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def hold(
        self,
        project: str,
        request_id: str,
        amount_nanos: int,
        *,
        granted_nanos: int | None,
        month_limit_nanos: int | None,
        month: str,
        expires_at_ms: int,
    ) -> HoldResult:
        """Reserve ``amount_nanos`` for a request until it is closed and settled (or until
        ``expires_at_ms``, server time). ``granted_nanos``: the sum of the project's grants, None
        for no credit check; ``month_limit_nanos``: its spend limit for ``month``, None for
        none. A request already holding is answered HELD and changes nothing."""
        _check_nanos("amount_nanos", amount_nanos)
        for name, value in (
            ("granted_nanos", granted_nanos),
            ("month_limit_nanos", month_limit_nanos),
        ):
            if value is not None:
                _check_nanos(name, value)
        reply = cast(
            "list[bytes | str]",
            await _HOLD.run(
                self._redis,
                _keys(project),
                (
                    request_id,
                    amount_nanos,
                    "" if granted_nanos is None else granted_nanos,
                    "" if month_limit_nanos is None else month_limit_nanos,
                    _month_field(month),
                    expires_at_ms,
                ),
            ),
        )
        outcome = HoldOutcome(_text(reply[0]))
        spent, month_spent, held = (int(_text(figure)) for figure in reply[1:])
        available = (
            None
            if granted_nanos is None or outcome is HoldOutcome.NOT_READY
            else granted_nanos - spent - held
        )
        return HoldResult(
            outcome=outcome,
            available_nanos=available,
            month_spent_nanos=month_spent,
            held_nanos=held,
        )

    async def close(
        self, project: str, request_id: str, attempts: int, *, cost_nanos: int | None = None
    ) -> None:
        """The request ended after ``attempts`` vendor attempts, each of which is settled once:
        its hold is released now if all of them are settled already (or there were none), else
        by the settle of the last one. ``cost_nanos``: what those attempts cost, when the caller
        knows it; the hold shrinks to it (never grows) until they are settled. No hold: nothing
        to do."""
        if attempts < 0:
            raise ValueError(f"attempts must not be negative: {attempts}")
        known = "" if cost_nanos is None else str(_check_nanos("cost_nanos", cost_nanos))
        await _CLOSE.run(self._redis, _keys(project), (request_id, attempts, known))

    async def settle(self, charges: Sequence[Charge]) -> None:
        """Count settled costs (already in ClickHouse): into ``spent`` and the month's figure of
        a ready ledger, and towards each request's hold. One script per project, run
        concurrently; if one fails, the others still run, and the first error is raised."""
        by_project: dict[str, list[str | int]] = {}
        for charge in charges:
            _check_nanos("cost_nanos", charge.cost_nanos)
            by_project.setdefault(charge.project, []).extend(
                (charge.request_id, charge.cost_nanos, _month_field(charge.month))
            )
        # Every call runs to its end before an error is raised: a caller that retries then does
        # not race calls of this batch still in flight.
        results = await asyncio.gather(
            *(
                _SETTLE.run(self._redis, _keys(project), args)
                for project, args in by_project.items()
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def request_rebuild(self, project: str) -> None:
        await self._redis.sadd(REBUILD_KEY, _check_project(project))

    async def pending_rebuilds(self, count: int = 100) -> list[str]:
        """Up to ``count`` projects waiting for a rebuild, taken off the set (one whose rebuild
        then fails is requested again by the next hold that finds its ledger not ready)."""
        popped = cast("list[bytes | str] | None", await self._redis.spop(REBUILD_KEY, count))
        return [_text(project) for project in popped or ()]

    async def init(
        self, project: str, *, spent_nanos: int, month: str, month_spent_nanos: int
    ) -> bool:
        """Fill a ledger that is not ready from ClickHouse's figures and mark it ready; its open
        holds are kept. Returns whether it did (False: it was ready already)."""
        _check_nanos("spent_nanos", spent_nanos)
        _check_nanos("month_spent_nanos", month_spent_nanos)
        done = await _INIT.run(
            self._redis, _keys(project), (spent_nanos, _month_field(month), month_spent_nanos)
        )
        return done == 1

    async def forget_ready(self) -> int:
        """Mark every ready ledger not ready, so each is rebuilt from ClickHouse; returns how
        many were ready. SCAN, not KEYS: Redis goes on serving the ingress meanwhile."""
        forgotten = 0
        batch: list[bytes | str] = []
        async for key in self._redis.scan_iter(
            match=_LEDGER_PATTERN, count=_FORGET_BATCH, _type="HASH"
        ):
            batch.append(key)
            if len(batch) >= _FORGET_BATCH:
                forgotten += await self._forget(batch)
                batch = []
        if batch:
            forgotten += await self._forget(batch)
        return forgotten

    async def _forget(self, keys: Sequence[bytes | str]) -> int:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hdel(key, "ready")
            removed = cast("list[int]", await pipe.execute())
        return sum(removed)

    async def snapshot(self, project: str, month: str) -> LedgerSnapshot:
        reply = cast(
            "list[int | bytes | str]",
            await _SNAPSHOT.run(self._redis, _keys(project), (_month_field(month),)),
        )
        return LedgerSnapshot(
            ready=reply[0] == 1,
            spent_nanos=int(_text(reply[1])),
            month_spent_nanos=int(_text(reply[2])),
            held_nanos=int(_text(reply[3])),
            open_holds=int(_text(reply[4])),
        )
