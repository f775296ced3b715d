"""Switchyard's own usage analytics: the analysts' query (``GET /v1/usage/query``: any dimension,
any bucket, chosen metrics, JSON or CSV) and the request log (``GET /v1/usage/requests``: one row
per request), read from ClickHouse; also what ``switchyard usage`` asks for.

What the numbers mean:

- A row of ``usage_events`` is one vendor attempt; ``request_id`` groups the attempts of one
  request, numbered from 0. Dimensions and filters of the query are the attempt's: grouped by
  model, a request that fell back from one model to another puts one attempt under each.
- ``requests`` counts the requests that began in a group: their first attempt (number 0) falls in
  it. So a request counts once, whatever its retries and fallbacks, and the counts add up across
  groups and buckets to the number of requests. ``attempts`` counts every attempt, ``ok`` and
  ``errors`` the attempts by outcome.
- Money is exact: ``cost`` sums the stored costs (Decimal(38, 12)), ``cost_uncached`` what the
  same tokens would have cost with no cache hits, ``savings`` the difference. Columns of money
  carry their currency (``cost_usd``) and leave as decimal strings, never through a float.
- Latency quantiles (``p50/p95/p99`` of ``total_ms`` and ``ttft_ms``) are ClickHouse's
  ``quantiles`` over the attempts, empty (null) where there is nothing to measure (no streamed
  attempt has a time to first token).
- Time: ``since`` (inclusive) and ``until`` (exclusive), ISO 8601 (UTC unless it says) or a
  window back from now (``30m``, ``1h``, ``7d``). A bucketed query covers whole buckets: ``since``
  moves back to the start of its bucket and ``until`` forward to the end of its own, so that the
  first and last buckets hold what their labels say. Weeks start on Monday (ISO), UTC.

Where an answer is read from: the narrowest rollup that answers exactly, else ``usage_events``
with FINAL. ``usage_day`` (migration 0009: per UTC day, over project, provider, model, lane and
batch) answers when every dimension grouped or filtered by is one of those and the bucket is a
day or a week (or there is none and the bounds fall on days). ``usage_hour`` (0007: per hour,
over project, provider, model, key_id, task_type and lane) answers the same way at an hour's
grain. Neither keeps ``unpriced`` or request ids. The rollups cannot see FINAL, so they are
exact because metering inserts each event once.

Every dimension, metric and bucket is one of a closed set, and every value a caller gives is a
bound parameter: no SQL is ever built from a caller's text.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client

from services.metering.store import FINAL_SETTINGS, UsageStore
from services.metering.window import MAX_WINDOW, InvalidWindowError, parse_window

DEFAULT_SINCE = "24h"
DEFAULT_QUERY_ROWS = 10_000
MAX_QUERY_ROWS = 100_000
DEFAULT_LOG_PAGE = 50
MAX_LOG_PAGE = 200
_MAX_VALUES = 100  # values of one filter
_MAX_VALUE_CHARS = 512

_E = TypeVar("_E", bound=StrEnum)


class InvalidAnalyticsQueryError(ValueError):
    """A parameter the analytics refuse; ``param`` names it (None: the query as a whole)."""

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param = param


class Source(StrEnum):
    """The tables an answer can be read from."""

    USAGE_DAY = "usage_day"
    USAGE_HOUR = "usage_hour"
    USAGE_EVENTS = "usage_events"


class Dimension(StrEnum):
    """What rows may be grouped and filtered by: a column of ``usage_events``."""

    PROJECT = "project"
    KEY_ID = "key_id"
    USER_TAG = "user_tag"
    PROVIDER = "provider"
    MODEL = "model"
    REQUESTED_MODEL = "requested_model"
    ROUTE_REASON = "route_reason"
    TASK_TYPE = "task_type"
    POLICY = "policy"
    LANE = "lane"
    BATCH_ID = "batch_id"
    STATUS = "status"
    ERROR_CLASS = "error_class"
    ATTEMPT = "attempt"

    @property
    def column(self) -> str:
        return "tenant" if self is Dimension.PROJECT else self.value


_D = Dimension
_HOUR_DIMENSIONS = frozenset({_D.PROJECT, _D.PROVIDER, _D.MODEL, _D.KEY_ID, _D.TASK_TYPE, _D.LANE})
_DAY_DIMENSIONS = frozenset({_D.PROJECT, _D.PROVIDER, _D.MODEL, _D.LANE, _D.BATCH_ID})


class Bucket(StrEnum):
    NONE = "none"
    MINUTE = "1m"
    HOUR = "1h"
    DAY = "1d"
    WEEK = "1w"

    @property
    def width(self) -> timedelta:
        return _WIDTHS[self]

    def start(self, moment: datetime) -> datetime:
        """The start of the bucket holding ``moment`` (UTC)."""
        moment = moment.astimezone(UTC)
        if self is Bucket.NONE:
            return moment
        start = moment.replace(second=0, microsecond=0)
        if self is not Bucket.MINUTE:
            start = start.replace(minute=0)
        if self in (Bucket.DAY, Bucket.WEEK):
            start = start.replace(hour=0)
        if self is Bucket.WEEK:
            start -= timedelta(days=start.weekday())
        return start

    def end(self, moment: datetime) -> datetime:
        """The end of the bucket holding the instant just before ``moment``: ``moment`` itself
        when it is a bucket's start (an exclusive bound stays where it is)."""
        start = self.start(moment)
        return start if start == moment else start + self.width

    def sql(self, time_column: str) -> str:
        return {
            Bucket.MINUTE: f"toStartOfMinute({time_column})",
            Bucket.HOUR: f"toStartOfHour({time_column})",
            Bucket.DAY: f"toStartOfDay({time_column})",
            # Mode 1: weeks start on Monday. toStartOfWeek gives a Date; the bucket is a time.
            Bucket.WEEK: f"toDateTime(toStartOfWeek({time_column}, 1), 'UTC')",
        }[self]


_WIDTHS = {
    Bucket.NONE: timedelta(0),
    Bucket.MINUTE: timedelta(minutes=1),
    Bucket.HOUR: timedelta(hours=1),
    Bucket.DAY: timedelta(days=1),
    Bucket.WEEK: timedelta(weeks=1),
}


@dataclass(frozen=True)
class _Rollup:
    """A rollup table: its time column, its grain, and the dimensions it keeps."""

    source: Source
    time_column: str
    grain: Bucket  # buckets of this width or wider fall on its rows' boundaries
    dimensions: frozenset[Dimension]


# Narrowest first: a query reads the first that answers it exactly.
_ROLLUPS = (
    _Rollup(Source.USAGE_DAY, "day", Bucket.DAY, _DAY_DIMENSIONS),
    _Rollup(Source.USAGE_HOUR, "hour", Bucket.HOUR, _HOUR_DIMENSIONS),
)
_ROLLUP_BY_SOURCE = {rollup.source: rollup for rollup in _ROLLUPS}


class Metric(StrEnum):
    REQUESTS = "requests"
    ATTEMPTS = "attempts"
    OK = "ok"
    ERRORS = "errors"
    INPUT_TOKENS = "input_tokens"
    OUTPUT_TOKENS = "output_tokens"
    CACHE_READ_TOKENS = "cache_read_tokens"
    CACHE_WRITE_TOKENS = "cache_write_tokens"
    REASONING_TOKENS = "reasoning_tokens"
    COST = "cost"
    COST_UNCACHED = "cost_uncached"
    SAVINGS = "savings"
    P50_TOTAL_MS = "p50_total_ms"
    P95_TOTAL_MS = "p95_total_ms"
    P99_TOTAL_MS = "p99_total_ms"
    P50_TTFT_MS = "p50_ttft_ms"
    P95_TTFT_MS = "p95_ttft_ms"
    P99_TTFT_MS = "p99_ttft_ms"
    # Attempts whose model had no price (they cost 0 until re-priced). Raw rows only: usage_hour
    # keeps no count of them.
    UNPRICED = "unpriced"

    @property
    def is_money(self) -> bool:
        return self in (Metric.COST, Metric.COST_UNCACHED, Metric.SAVINGS)

    @property
    def is_quantile(self) -> bool:
        return self.value.split("_", 1)[0] in _QUANTILE_INDEX

    @property
    def field(self) -> str:
        """Its column in an answer: money carries its currency."""
        return f"{self.value}_usd" if self.is_money else self.value


_M = Metric
_QUANTILES = "0.5, 0.9, 0.95, 0.99"  # the rollups' quantile states hold these four
_QUANTILE_INDEX = {"p50": 1, "p95": 3, "p99": 4}  # ClickHouse arrays count from 1


def _quantile(metric: Metric, *, rollup: bool) -> str:
    level, measure = metric.value.split("_", 1)  # ("p95", "total_ms")
    index = _QUANTILE_INDEX[level]
    if rollup:
        return f"quantilesMerge({_QUANTILES})({measure}_quantiles)[{index}]"
    return f"quantiles({_QUANTILES})({measure})[{index}]"


_SUMS = {
    _M.INPUT_TOKENS: "input_tokens",
    _M.OUTPUT_TOKENS: "output_tokens",
    _M.CACHE_READ_TOKENS: "cache_read_tokens",
    _M.CACHE_WRITE_TOKENS: "cache_write_tokens",
    _M.REASONING_TOKENS: "reasoning_tokens",
    _M.COST: "cost_usd",
    _M.COST_UNCACHED: "cost_uncached_usd",
}
# Each metric over usage_events (one row per attempt) and over usage_hour (sums per hour, where
# ``requests`` counts attempts and ``later_attempts`` those numbered above 0).
_RAW_SQL: dict[Metric, str] = {
    _M.REQUESTS: "countIf(attempt = 0)",
    _M.ATTEMPTS: "count()",
    _M.OK: "countIf(status = 'ok')",
    _M.ERRORS: "countIf(status != 'ok')",
    _M.SAVINGS: "sum(cost_uncached_usd) - sum(cost_usd)",
    **{m: f"sum({column})" for m, column in _SUMS.items()},
    **{m: _quantile(m, rollup=False) for m in Metric if m.is_quantile},
}
_RAW_SQL[_M.UNPRICED] = "countIf(NOT priced)"
_ROLLUP_SQL: dict[Metric, str] = {
    _M.REQUESTS: "sum(requests) - sum(later_attempts)",
    _M.ATTEMPTS: "sum(requests)",
    _M.OK: "sum(ok)",
    _M.ERRORS: "sum(errors)",
    _M.SAVINGS: "sum(cost_uncached_usd) - sum(cost_usd)",
    **{m: f"sum({column})" for m, column in _SUMS.items()},
    **{m: _quantile(m, rollup=True) for m in Metric if m.is_quantile},
}

DEFAULT_METRICS: tuple[Metric, ...] = (
    _M.REQUESTS,
    _M.ATTEMPTS,
    _M.ERRORS,
    _M.INPUT_TOKENS,
    _M.OUTPUT_TOKENS,
    _M.CACHE_READ_TOKENS,
    _M.CACHE_WRITE_TOKENS,
    _M.REASONING_TOKENS,
    _M.COST,
    _M.COST_UNCACHED,
    _M.SAVINGS,
)


class OutputFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


Filters = Mapping[Dimension, frozenset[str]]


def _check_filters(filters: Filters, allowed: Iterable[Dimension]) -> None:
    allowed = frozenset(allowed)
    for dimension, values in filters.items():
        if dimension not in allowed:
            raise InvalidAnalyticsQueryError(dimension.value, f"Cannot filter by '{dimension}'.")
        if not values:
            raise InvalidAnalyticsQueryError(dimension.value, f"'{dimension}' needs a value.")
        if dimension is Dimension.ATTEMPT and not all(_is_attempt(v) for v in values):
            raise InvalidAnalyticsQueryError("attempt", "'attempt' takes whole numbers from 0.")


def _is_attempt(value: str) -> bool:
    return value.isascii() and value.isdigit() and int(value) < 65_536


def _check_window(since: datetime, until: datetime | None) -> None:
    if since.tzinfo is None or (until is not None and until.tzinfo is None):
        raise ValueError("since and until must carry a time zone")
    if until is not None and until <= since:
        raise InvalidAnalyticsQueryError("until", "'until' must be after 'since'.")


# ---- the analysts' query --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class UsageQuery:
    """Rows of ``metrics`` per ``bucket`` and per combination of ``group_by`` over
    ``[since, until)`` (None: up to now), narrowed by ``filters`` (each dimension: one of its
    values) and ``request_ids``."""

    since: datetime
    until: datetime | None = None
    group_by: tuple[Dimension, ...] = ()
    bucket: Bucket = Bucket.NONE
    metrics: tuple[Metric, ...] = DEFAULT_METRICS
    filters: Filters = field(default_factory=dict)
    request_ids: frozenset[str] = frozenset()
    limit: int = DEFAULT_QUERY_ROWS

    def __post_init__(self) -> None:
        _check_window(self.since, self.until)
        _check_filters(self.filters, Dimension)
        if not self.metrics:
            raise InvalidAnalyticsQueryError("metrics", "Ask for at least one metric.")
        if len(set(self.metrics)) != len(self.metrics):
            raise InvalidAnalyticsQueryError("metrics", "A metric is named twice.")
        if len(set(self.group_by)) != len(self.group_by):
            raise InvalidAnalyticsQueryError("group_by", "A dimension is named twice.")
        if not 1 <= self.limit <= MAX_QUERY_ROWS:
            raise InvalidAnalyticsQueryError(
                "limit", f"'limit' must be from 1 to {MAX_QUERY_ROWS}."
            )

    @property
    def window(self) -> tuple[datetime, datetime | None]:
        """``[since, until)`` as read: widened to whole buckets when bucketed."""
        if self.bucket is Bucket.NONE:
            return self.since, self.until
        until = None if self.until is None else self.bucket.end(self.until)
        return self.bucket.start(self.since), until

    @property
    def order_by(self) -> Metric:
        """Within a bucket, rows come largest first by this: spend, when asked for."""
        return Metric.COST if Metric.COST in self.metrics else self.metrics[0]

    def rollup_answers(self, source: Source) -> bool:
        """Whether the rollup ``source`` holds the answer exactly (see the module's
        docstring)."""
        rollup = _ROLLUP_BY_SOURCE.get(source)
        if rollup is None:
            return False
        since, until = self.window
        on_boundaries = all(
            t is None or rollup.grain.start(t) == t.astimezone(UTC) for t in (since, until)
        )
        return (
            (
                self.bucket.width >= rollup.grain.width
                or (self.bucket is Bucket.NONE and on_boundaries)
            )
            and set(self.group_by) <= rollup.dimensions
            and set(self.filters) <= rollup.dimensions
            and set(self.metrics) <= set(_ROLLUP_SQL)
            and not self.request_ids
        )

    @property
    def source(self) -> Source:
        for rollup in _ROLLUPS:
            if self.rollup_answers(rollup.source):
                return rollup.source
        return Source.USAGE_EVENTS

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns of every row, in order."""
        bucket = ("bucket",) if self.bucket is not Bucket.NONE else ()
        return (*bucket, *(d.value for d in self.group_by), *(m.field for m in self.metrics))


@dataclass(frozen=True)
class QueryResult:
    query: UsageQuery
    source: Source
    # Rows keyed by ``query.columns``: the bucket's start a datetime, money a Decimal, counts
    # ints, quantiles floats (None when there was nothing to measure).
    rows: list[dict[str, Any]]
    has_more: bool  # more rows matched than ``query.limit``


async def run_query(
    store: UsageStore,
    query: UsageQuery,
    *,
    scope: frozenset[str] | None,
    source: Source | None = None,
) -> QueryResult:
    """``query`` over the projects in ``scope`` (None: all). ``source``: read this table rather
    than the one the query chooses; ``usage_hour`` where it cannot answer exactly is a
    ValueError."""
    chosen = source or query.source
    if chosen is not Source.USAGE_EVENTS and not query.rollup_answers(chosen):
        raise ValueError(f"{chosen.value} cannot answer this query exactly")
    sql, parameters = _query_sql(query, chosen, scope)

    def run(client: Client) -> list[Sequence[Any]]:
        return list(client.query(sql, parameters=parameters).result_rows)

    rows = await store.on_client(run)
    decoded = [_query_row(query, row) for row in rows[: query.limit]]
    return QueryResult(query, chosen, decoded, has_more=len(rows) > query.limit)


def _query_sql(
    query: UsageQuery, source: Source, scope: frozenset[str] | None
) -> tuple[str, dict[str, Any]]:
    rollup = _ROLLUP_BY_SOURCE.get(source)
    since, until = query.window
    parameters: dict[str, Any] = {"limit": query.limit + 1, **_scope_parameters(scope)}
    where = ["({everyone:Bool} OR tenant IN {tenants:Array(String)})"]
    if rollup is not None:
        time_column, table, metric_sql = rollup.time_column, source.value, _ROLLUP_SQL
        where.append(f"{time_column} >= toDateTime({{since_s:Int64}}, 'UTC')")
        parameters["since_s"] = int(since.timestamp())
        if until is not None:
            where.append(f"{time_column} < toDateTime({{until_s:Int64}}, 'UTC')")
            parameters["until_s"] = int(until.timestamp())
    else:
        time_column, table, metric_sql = "ts", f"{Source.USAGE_EVENTS.value} FINAL", _RAW_SQL
        where.append("ts >= fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC')")
        parameters["since_ms"] = _epoch_ms(since)
        if until is not None:
            where.append("ts < fromUnixTimestamp64Milli({until_ms:Int64}, 'UTC')")
            parameters["until_ms"] = _epoch_ms(until)
    where += _filter_sql(query.filters, query.request_ids, parameters)

    # Aliases differ from every column name on purpose: ClickHouse lets an alias shadow a
    # column, and ``sum(input_tokens) AS input_tokens`` would then refer to itself.
    select: list[str] = []
    keys: list[str] = []
    if query.bucket is not Bucket.NONE:
        select.append(f"toUnixTimestamp({query.bucket.sql(time_column)}) AS b")
        keys.append("b")
    for i, dimension in enumerate(query.group_by):
        select.append(f"{dimension.column} AS g{i}")
        keys.append(f"g{i}")
    select += [f"{metric_sql[m]} AS m{j}" for j, m in enumerate(query.metrics)]
    order = [
        *(["b"] if query.bucket is not Bucket.NONE else []),
        f"m{query.metrics.index(query.order_by)} DESC",
        *(k for k in keys if k != "b"),
    ]
    sql = f"SELECT {', '.join(select)} FROM {table} WHERE {' AND '.join(where)}"
    if keys:
        sql += f" GROUP BY {', '.join(keys)}"
    sql += f" ORDER BY {', '.join(order)} LIMIT {{limit:UInt32}}"
    if rollup is None:
        sql += FINAL_SETTINGS
    return sql, parameters


def _query_row(query: UsageQuery, row: Sequence[Any]) -> dict[str, Any]:
    values = iter(row)
    decoded: dict[str, Any] = {}
    if query.bucket is not Bucket.NONE:
        decoded["bucket"] = datetime.fromtimestamp(int(next(values)), tz=UTC)
    for dimension in query.group_by:
        value = next(values)
        decoded[dimension.value] = int(value) if dimension is Dimension.ATTEMPT else str(value)
    for metric in query.metrics:
        decoded[metric.field] = _metric_value(metric, next(values))
    return decoded


def _metric_value(metric: Metric, value: Any) -> int | float | Decimal | None:
    if metric.is_money:
        return Decimal(value)
    if metric.is_quantile:
        # quantiles over nothing (no rows, or only NULL ttfts) is NaN, or NULL.
        if value is None or math.isnan(float(value)):
            return None
        return round(float(value), 3)
    return int(value)


# ---- the request log ------------------------------------------------------------------------

# Request-level facts, the same on every attempt of a request (ingress sets them): filtered on
# the attempts, before they are grouped, so that ClickHouse reads less.
_REQUEST_FILTERS = frozenset({_D.PROJECT, _D.KEY_ID, _D.USER_TAG, _D.TASK_TYPE, _D.BATCH_ID})
# What may differ from one attempt to the next: a request matches on its last attempt's.
_LAST_ATTEMPT_FILTERS = {_D.MODEL: "r_model", _D.PROVIDER: "r_provider", _D.STATUS: "r_status"}
LOG_FILTERS = frozenset(_REQUEST_FILTERS | set(_LAST_ATTEMPT_FILTERS))


@dataclass(frozen=True)
class LogCursor:
    """Where a page of the log ended: the last request's first attempt and its id. Opaque to
    callers (base64 of both), so that its form may change."""

    first_ms: int
    request_id: str

    def encode(self) -> str:
        raw = f"{self.first_ms}:{self.request_id}".encode()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str) -> LogCursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            first_ms, request_id = raw.split(":", 1)
            # Up to 13 digits: any millisecond until the year 2286, and never one that a
            # datetime cannot hold (a cursor is a caller's text).
            if first_ms.isascii() and first_ms.isdigit() and len(first_ms) <= 13 and request_id:
                return cls(int(first_ms), request_id)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            pass
        raise InvalidAnalyticsQueryError("after", "'after' is not a cursor this endpoint gave.")


@dataclass(frozen=True, kw_only=True)
class RequestLogQuery:
    """Requests whose first attempt falls in ``[since, until)``, newest first. Filters on
    ``model``, ``provider`` and ``status`` match the request's last attempt (where it ended);
    the others are the same on every attempt."""

    since: datetime
    until: datetime | None = None
    filters: Filters = field(default_factory=dict)
    request_ids: frozenset[str] = frozenset()
    limit: int = DEFAULT_LOG_PAGE
    after: LogCursor | None = None

    def __post_init__(self) -> None:
        _check_window(self.since, self.until)
        _check_filters(self.filters, LOG_FILTERS)
        if not 1 <= self.limit <= MAX_LOG_PAGE:
            raise InvalidAnalyticsQueryError("limit", f"'limit' must be from 1 to {MAX_LOG_PAGE}.")


@dataclass(frozen=True)
class RequestLogPage:
    # One dict per request (``LOG_FIELDS``): times as datetimes, money as Decimals, absent
    # values None.
    requests: list[dict[str, Any]]
    has_more: bool

    @property
    def next(self) -> LogCursor | None:
        if not self.has_more or not self.requests:
            return None
        last = self.requests[-1]
        return LogCursor(_epoch_ms(last["first_attempt_at"]), last["request_id"])


# (field, expression) of one request's row. The last attempt is the one numbered highest; the
# tuple keeps argMax from skipping a NULL time to first token (it skips NULL arguments).
_LOG_SELECT: tuple[tuple[str, str], ...] = (
    ("request_id", "request_id"),
    ("first_attempt_at", "toUnixTimestamp64Milli(min(ts)) AS r_first_ms"),
    ("last_attempt_at", "toUnixTimestamp64Milli(max(ts))"),
    ("project", "any(tenant)"),
    ("key_id", "any(key_id)"),
    ("user_tag", "any(user_tag)"),
    ("requested_model", "any(requested_model)"),
    ("model", "argMax(model, attempt) AS r_model"),
    ("provider", "argMax(provider, attempt) AS r_provider"),
    ("route_reason", "argMax(route_reason, attempt)"),
    ("task_type", "any(task_type)"),
    ("policy", "argMax(policy, attempt)"),
    ("lane", "argMax(lane, attempt)"),
    ("batch_id", "any(batch_id)"),
    ("status", "argMax(status, attempt) AS r_status"),
    ("error_class", "argMax(error_class, attempt)"),
    ("attempts", "count()"),
    ("input_tokens", "sum(input_tokens)"),
    ("output_tokens", "sum(output_tokens)"),
    ("cache_read_tokens", "sum(cache_read_tokens)"),
    ("cache_write_tokens", "sum(cache_write_tokens)"),
    ("reasoning_tokens", "sum(reasoning_tokens)"),
    ("cost_usd", "sum(cost_usd)"),
    ("cost_uncached_usd", "sum(cost_uncached_usd)"),
    ("savings_usd", "sum(cost_uncached_usd) - sum(cost_usd)"),
    ("cache_hit", "max(cache_read_tokens) > 0"),
    ("ttft_ms", "argMax(tuple(ttft_ms), attempt).1"),
    ("total_ms", "argMax(total_ms, attempt)"),
)
LOG_FIELDS = tuple(name for name, _ in _LOG_SELECT)
# Empty in the table when absent; null in an answer.
_OPTIONAL = frozenset(
    {"user_tag", "route_reason", "task_type", "policy", "batch_id", "error_class"}
)


# How far back from the top of its range the log looks first, then next: a page is newest
# first, so on a busy store the last hour already holds it and the rest is never read.
_LOG_PROBES = (timedelta(hours=1), timedelta(hours=6), timedelta(days=1), timedelta(days=7))


async def request_log(
    store: UsageStore,
    query: RequestLogQuery,
    *,
    scope: frozenset[str] | None,
    now: datetime | None = None,
) -> RequestLogPage:
    """One page of the requests ``query`` selects, over the projects in ``scope`` (None: all).

    The page is read from the newest slice of the range first, widening the slice until it
    holds a page and one more request, or is the whole range. Exact: every request outside a
    slice began before it, so it ranks below every request inside; once a slice holds
    ``limit + 1`` requests they are the range's newest ``limit + 1``. Sparse filters cost a
    few extra small queries; a busy store answers from the last hour."""
    for since in _probe_starts(query, now or datetime.now(UTC)):
        sql, parameters = _log_sql(replace(query, since=since), scope)

        def run(client: Client, sql: str = sql, parameters: dict[str, Any] = parameters) -> Any:
            return list(client.query(sql, parameters=parameters).result_rows)

        rows: list[Sequence[Any]] = await store.on_client(run)
        if len(rows) > query.limit:
            break
    requests = [_log_row(row) for row in rows[: query.limit]]
    return RequestLogPage(requests, has_more=len(rows) > query.limit)


def _probe_starts(query: RequestLogQuery, now: datetime) -> list[datetime]:
    """The starts of the slices to read, narrowest first, ending with ``query.since``."""
    top = now if query.until is None else min(query.until, now)
    if query.after is not None:
        top = min(top, _from_epoch_ms(query.after.first_ms + 1))
    starts = [top - span for span in _LOG_PROBES if top - span > query.since]
    return [*starts, query.since]


def _log_sql(query: RequestLogQuery, scope: frozenset[str] | None) -> tuple[str, dict[str, Any]]:
    parameters: dict[str, Any] = {
        "limit": query.limit + 1,
        "since_ms": _epoch_ms(query.since),
        **_scope_parameters(scope),
    }
    # Every attempt of a request that began at or after ``since`` ended after it too, so this
    # bound keeps whole requests while ClickHouse skips older partitions. A request that began
    # before it shows up here without its attempt 0: HAVING drops it.
    where = [
        "ts >= fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC')",
        "({everyone:Bool} OR tenant IN {tenants:Array(String)})",
    ]
    request_level = {d: v for d, v in query.filters.items() if d in _REQUEST_FILTERS}
    where += _filter_sql(request_level, query.request_ids, parameters)
    having = ["min(attempt) = 0"]
    if query.until is not None:
        having.append("r_first_ms < {until_ms:Int64}")
        parameters["until_ms"] = _epoch_ms(query.until)
    for dimension, alias in _LAST_ATTEMPT_FILTERS.items():
        if dimension in query.filters:
            having.append(f"{alias} IN {{h_{dimension.value}:Array(String)}}")
            parameters[f"h_{dimension.value}"] = sorted(query.filters[dimension])
    if query.after is not None:
        having.append("(r_first_ms, request_id) < ({after_ms:Int64}, {after_id:String})")
        parameters |= {"after_ms": query.after.first_ms, "after_id": query.after.request_id}
    last_filters = [d for d in _LAST_ATTEMPT_FILTERS if d in query.filters]
    if last_filters:
        # A request whose last attempt matches has an attempt that matches: only those
        # requests are grouped (a superset; HAVING keeps the exact ones). Without this every
        # request of the range was grouped to find the few that ended on an error.
        matching = [*where, *(f"{d.column} IN {{h_{d.value}:Array(String)}}" for d in last_filters)]
        where.append(
            f"request_id IN (SELECT request_id FROM {Source.USAGE_EVENTS.value}"
            f" WHERE {' AND '.join(matching)})"
        )
    else:
        # The page's requests first, from their first attempts alone (two columns, no FINAL:
        # a redelivered duplicate has the same id and time, and GROUP BY folds it), so that only
        # those requests are totalled over every column: the cost no longer grows with the
        # window. With a filter on the last attempt the page cannot be told from attempt 0.
        first = [*where, "attempt = 0"]
        page_having = []
        if query.until is not None:
            page_having.append("p_first_ms < {until_ms:Int64}")
        if query.after is not None:
            page_having.append("(p_first_ms, request_id) < ({after_ms:Int64}, {after_id:String})")
        where.append(
            "request_id IN (SELECT request_id FROM ("
            "SELECT request_id, toUnixTimestamp64Milli(min(ts)) AS p_first_ms"
            f" FROM {Source.USAGE_EVENTS.value} WHERE {' AND '.join(first)}"
            " GROUP BY request_id"
            + (f" HAVING {' AND '.join(page_having)}" if page_having else "")
            + " ORDER BY p_first_ms DESC, request_id DESC LIMIT {limit:UInt32}))"
        )
    sql = (
        f"SELECT {', '.join(expression for _, expression in _LOG_SELECT)}"
        f" FROM {Source.USAGE_EVENTS.value} FINAL WHERE {' AND '.join(where)}"
        f" GROUP BY request_id HAVING {' AND '.join(having)}"
        " ORDER BY r_first_ms DESC, request_id DESC LIMIT {limit:UInt32}" + FINAL_SETTINGS
    )
    return sql, parameters


def _log_row(row: Sequence[Any]) -> dict[str, Any]:
    entry = dict(zip(LOG_FIELDS, row, strict=True))
    for name in ("first_attempt_at", "last_attempt_at"):
        entry[name] = _from_epoch_ms(int(entry[name]))
    for name in ("cost_usd", "cost_uncached_usd", "savings_usd"):
        entry[name] = Decimal(entry[name])
    for name in _OPTIONAL:
        entry[name] = str(entry[name]) or None
    entry["cache_hit"] = bool(entry["cache_hit"])
    entry["ttft_ms"] = None if entry["ttft_ms"] is None else int(entry["ttft_ms"])
    return entry


# ---- shared SQL pieces ----------------------------------------------------------------------


def _scope_parameters(scope: frozenset[str] | None) -> dict[str, Any]:
    return {"everyone": scope is None, "tenants": sorted(scope or ())}


def _filter_sql(
    filters: Filters, request_ids: frozenset[str], parameters: dict[str, Any]
) -> list[str]:
    """``column IN {values}`` per filter, its values bound into ``parameters``."""
    where: list[str] = []
    for dimension, values in filters.items():
        name = f"f_{dimension.value}"  # a Dimension's value: a fixed identifier
        if dimension is Dimension.ATTEMPT:
            where.append(f"attempt IN {{{name}:Array(UInt16)}}")
            parameters[name] = sorted(int(v) for v in values)
        else:
            where.append(f"{dimension.column} IN {{{name}:Array(String)}}")
            parameters[name] = sorted(values)
    if request_ids:
        where.append("request_id IN {request_ids:Array(String)}")
        parameters["request_ids"] = sorted(request_ids)
    return where


def _epoch_ms(moment: datetime) -> int:
    # Integer arithmetic: a float timestamp would blur the milliseconds.
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // timedelta(milliseconds=1)


def _from_epoch_ms(ms: int) -> datetime:
    seconds, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(milliseconds=millis)


# ---- reading parameters ---------------------------------------------------------------------

Params = Mapping[str, Sequence[str]]  # each name with every value it was given, in order

_QUERY_PARAMS = frozenset(
    {"since", "until", "group_by", "bucket", "metrics", "format", "limit", "request_id"}
) | {d.value for d in Dimension}
_LOG_PARAMS = frozenset({"since", "until", "limit", "after", "request_id"}) | {
    d.value for d in LOG_FILTERS
}


def parse_instant(text: str, *, now: datetime, param: str) -> datetime:
    """An ISO 8601 time (UTC unless it names a zone) or a window back from ``now`` (``7d``)."""
    try:
        return now - parse_window(text)
    except InvalidWindowError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidAnalyticsQueryError(
            param,
            f"'{param}' must be an ISO 8601 time (2026-01-31T12:00:00Z) or a window back from"
            f" now (30m, 1h, 7d), not {text[:64]!r}.",
        ) from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if not now - MAX_WINDOW <= moment <= now + MAX_WINDOW:
        raise InvalidAnalyticsQueryError(param, f"'{param}' is more than ten years away.")
    return moment.astimezone(UTC)


def parse_usage_query(params: Params, *, now: datetime) -> tuple[UsageQuery, OutputFormat]:
    """The query of ``GET /v1/usage/query`` (and of ``switchyard usage``). Lists (``group_by``,
    ``metrics``) are repeated or comma-separated; a filter (any dimension, ``request_id``) is
    repeated for several values. An unknown parameter is refused: a misspelt filter would
    otherwise widen the answer without a word."""
    _refuse_unknown(params, _QUERY_PARAMS)
    since, until = _window(params, now)
    group_by = tuple(_choices(params, "group_by", Dimension))
    metrics = tuple(_choices(params, "metrics", Metric)) or DEFAULT_METRICS
    bucket = _choice(params, "bucket", Bucket) or Bucket.NONE
    output = _choice(params, "format", OutputFormat) or OutputFormat.JSON
    limit = _integer(params, "limit")
    query = UsageQuery(
        since=since,
        until=until,
        group_by=group_by,
        bucket=bucket,
        metrics=metrics,
        filters=_filters(params, Dimension),
        request_ids=frozenset(_values(params, "request_id")),
        limit=DEFAULT_QUERY_ROWS if limit is None else limit,
    )
    return query, output


def parse_log_query(params: Params, *, now: datetime) -> RequestLogQuery:
    """The query of ``GET /v1/usage/requests``; an unknown parameter is refused."""
    _refuse_unknown(params, _LOG_PARAMS)
    since, until = _window(params, now)
    limit = _integer(params, "limit")
    after = _one(params, "after")
    return RequestLogQuery(
        since=since,
        until=until,
        filters=_filters(params, LOG_FILTERS),
        request_ids=frozenset(_values(params, "request_id")),
        limit=DEFAULT_LOG_PAGE if limit is None else limit,
        after=None if after is None else LogCursor.decode(after),
    )


def _refuse_unknown(params: Params, known: frozenset[str]) -> None:
    for name in params:
        if name not in known:
            raise InvalidAnalyticsQueryError(
                name, f"Unknown parameter '{name[:64]}': use {', '.join(sorted(known))}."
            )


def _window(params: Params, now: datetime) -> tuple[datetime, datetime | None]:
    since = parse_instant(_one(params, "since") or DEFAULT_SINCE, now=now, param="since")
    until_text = _one(params, "until")
    until = None if until_text is None else parse_instant(until_text, now=now, param="until")
    return since, until


def _one(params: Params, name: str) -> str | None:
    values = params.get(name, ())
    if len(values) > 1:
        raise InvalidAnalyticsQueryError(name, f"Give '{name}' once.")
    return values[0] if values else None


def _values(params: Params, name: str) -> list[str]:
    values = list(params.get(name, ()))
    if len(values) > _MAX_VALUES:
        raise InvalidAnalyticsQueryError(name, f"At most {_MAX_VALUES} values of '{name}'.")
    if any(len(v) > _MAX_VALUE_CHARS or not v for v in values):
        raise InvalidAnalyticsQueryError(
            name, f"Each '{name}' must be 1 to {_MAX_VALUE_CHARS} characters."
        )
    return values


def _filters(params: Params, dimensions: Iterable[Dimension]) -> Filters:
    return {d: frozenset(_values(params, d.value)) for d in dimensions if params.get(d.value)}


def _choices(params: Params, name: str, kind: type[_E]) -> list[_E]:
    """Each value of a list parameter, repeated or comma-separated, in order."""
    names = [part.strip() for value in params.get(name, ()) for part in value.split(",")]
    return [_member(kind, name, n) for n in names if n]


def _choice(params: Params, name: str, kind: type[_E]) -> _E | None:
    value = _one(params, name)
    return None if value is None else _member(kind, name, value.strip())


def _member(kind: type[_E], param: str, value: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise InvalidAnalyticsQueryError(
            param, f"Invalid {param} '{value[:64]}': use one of {choices}."
        ) from None


def _integer(params: Params, name: str) -> int | None:
    value = _one(params, name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise InvalidAnalyticsQueryError(name, f"'{name}' must be a whole number.")
    return int(value)


# ---- writing answers ------------------------------------------------------------------------


def iso_time(moment: datetime) -> str:
    """UTC, with milliseconds only when it has them: ``2026-01-01T12:00:00Z``."""
    moment = moment.astimezone(UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # the stored digits; never "0E-12", never a float
    if isinstance(value, datetime):
        return iso_time(value)
    return value


def render_query(result: QueryResult) -> dict[str, Any]:
    """The JSON body of a query's answer."""
    query = result.query
    since, until = query.window
    return {
        "object": "list",
        "source": result.source.value,
        "since": iso_time(since),
        "until": None if until is None else iso_time(until),
        "bucket": query.bucket.value,
        "group_by": [d.value for d in query.group_by],
        "metrics": [m.value for m in query.metrics],
        "columns": list(query.columns),
        "data": [{k: _json_value(v) for k, v in row.items()} for row in result.rows],
        "has_more": result.has_more,
    }


def render_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A header row, then one line per row; money as its exact decimal digits, nothing (an
    empty field) for an absent value. ``rows`` as ``render_query`` writes them, or typed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        values = (_json_value(row.get(column)) for column in columns)
        writer.writerow("" if value is None else value for value in values)
    return out.getvalue()


def render_log_page(page: RequestLogPage) -> dict[str, Any]:
    cursor = page.next
    return {
        "object": "list",
        "data": [
            {"object": "usage.request", **{k: _json_value(v) for k, v in entry.items()}}
            for entry in page.requests
        ],
        "has_more": page.has_more,
        "next": None if cursor is None else cursor.encode(),
    }
