"""OpenAI's Usage and Costs API (``GET /v1/organization/usage/completions``,
``.../usage/embeddings`` and ``GET /v1/organization/costs``) answered from ClickHouse: the query
as OpenAI's clients send it, the ClickHouse query that answers it, and the page in OpenAI's shape.

What each answer means here:

- Buckets are UTC-aligned: whole minutes, hours, or days from midnight UTC. The range is
  ``[start_time, end_time)`` exactly; a bound that falls inside a bucket clips that bucket, and the
  clipped bucket says so in its own ``start_time``/``end_time``. Without ``end_time`` the range
  ends with the bucket holding the present moment. Every bucket of the range appears, those
  without usage with ``results: []``, as OpenAI answers.
- Completions are every ``usage_events`` row: every protocol Switchyard serves today is a chat
  completion. ``num_model_requests`` counts vendor attempts, failed ones, retries and fallbacks
  included: each is a request made to a model, and its tokens are in the token sums. The count
  adds up across buckets and groups, where a distinct count of request ids would not (a request
  that fell back from one model to another would count once under each model, but once in the
  total), and the rollups, which keep a count per row, can answer it.
- ``project_id`` is the tenant ("admin" for the bootstrap key's own calls), ``user_id`` the
  caller's end-user tag (OpenAI's ``user`` field; no tag reads as null), ``api_key_id`` the key
  id, ``model`` the canonical model id. ``models[]`` matches a canonical id (``openai/gpt-4o``) or
  the id without its provider (``gpt-4o``), which is what a tool written for OpenAI sends.
  ``batch`` is whether the attempt belonged to a batch; ``service_tier`` is always null:
  Switchyard has no service tiers, so grouping by it splits nothing.
- Token fields: ``input_tokens`` (cached tokens included, as OpenAI counts), ``output_tokens``,
  ``input_cached_tokens`` (cache reads), audio tokens 0 (no audio is served). The newer optional
  fields (cache writes, uncached, per-modality splits) are left out: ``usage_minute`` has no
  cache-write column, so the per-minute rollup could not give them, and text and image input are
  not counted apart.
- Embeddings: none are served yet (issue 13), so every bucket is empty, in the right shape. When
  they are, completions must leave them out, and the rollups need a column that tells them apart.
- Costs: ``amount.value`` is the exact sum of the stored costs (a JSON number written from the
  Decimal's digits, never through a float: ``render_json``), ``currency`` "usd"; ``line_item`` is
  the canonical model id. ``quantity`` and ``quantity_unit`` are null: a model's cost mixes
  token kinds priced apart, so no single unit applies.
- Scope: the caller's visible projects (None: all). A ``project_ids`` filter narrows them; one
  outside them yields nothing for that project, not an error, so the answer does not reveal
  which projects exist.

Each page is read from the smallest table that can answer it exactly (``cheapest_source``):
``usage_hour`` for buckets of an hour or a day, ``usage_minute`` for minutes, ``usage_events``
(with FINAL) when a dimension the rollup lacks is asked for (user, batch; the key for minutes)
or a range bound falls inside the rollup's grain.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from clickhouse_connect.driver.client import Client

from contracts.errors import ErrorCode
from services.metering.store import FINAL_SETTINGS, UsageStore

# Timestamps are Unix seconds, which ClickHouse's DateTime holds up to 2106; a bound this far
# out is a mistake, not a query.
MAX_TIME = 4_102_444_800  # 2100-01-01T00:00:00Z
_MAX_VALUES = 100
_MAX_VALUE_CHARS = 512


class UsageKind(StrEnum):
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    COSTS = "costs"


class BucketWidth(StrEnum):
    MINUTE = "1m"
    HOUR = "1h"
    DAY = "1d"

    @property
    def seconds(self) -> int:
        return {BucketWidth.MINUTE: 60, BucketWidth.HOUR: 3600, BucketWidth.DAY: 86_400}[self]


class Dimension(StrEnum):
    """What a result may be grouped by: OpenAI's ``group_by`` values."""

    PROJECT = "project_id"
    USER = "user_id"
    API_KEY = "api_key_id"
    MODEL = "model"
    BATCH = "batch"
    SERVICE_TIER = "service_tier"
    LINE_ITEM = "line_item"


class Source(StrEnum):
    """The tables a page can be read from, smallest first."""

    HOUR = "usage_hour"
    MINUTE = "usage_minute"
    RAW = "usage_events"


class InvalidUsageQueryError(ValueError):
    """A parameter OpenAI's API would refuse: answered 400 in OpenAI's error shape."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


# (default, maximum) number of buckets per page, as OpenAI's spec gives them.
_LIMITS: dict[UsageKind, dict[BucketWidth, tuple[int, int]]] = {
    UsageKind.COMPLETIONS: {
        BucketWidth.DAY: (7, 31),
        BucketWidth.HOUR: (24, 168),
        BucketWidth.MINUTE: (60, 1440),
    },
    UsageKind.COSTS: {BucketWidth.DAY: (7, 180)},
}
_LIMITS[UsageKind.EMBEDDINGS] = _LIMITS[UsageKind.COMPLETIONS]

_D = Dimension
_GROUPS: dict[UsageKind, tuple[Dimension, ...]] = {
    UsageKind.COMPLETIONS: (_D.PROJECT, _D.USER, _D.API_KEY, _D.MODEL, _D.BATCH, _D.SERVICE_TIER),
    UsageKind.EMBEDDINGS: (_D.PROJECT, _D.USER, _D.API_KEY, _D.MODEL),
    UsageKind.COSTS: (_D.PROJECT, _D.LINE_ITEM, _D.API_KEY),
}
# Filters each endpoint takes, by parameter name, with the dimension each reads.
_FILTERS: dict[UsageKind, dict[str, Dimension]] = {
    UsageKind.COMPLETIONS: {
        "project_ids": _D.PROJECT,
        "user_ids": _D.USER,
        "api_key_ids": _D.API_KEY,
        "models": _D.MODEL,
    },
    UsageKind.COSTS: {"project_ids": _D.PROJECT, "api_key_ids": _D.API_KEY},
}
_FILTERS[UsageKind.EMBEDDINGS] = _FILTERS[UsageKind.COMPLETIONS]
# Parameters of one endpoint that another does not take. Refused rather than ignored: a filter
# dropped without a word would widen the answer.
_FOREIGN = ("project_ids", "user_ids", "api_key_ids", "models", "batch")

# The column (or expression) of each dimension; service_tier has none.
_COLUMN: dict[Dimension, str] = {
    _D.PROJECT: "tenant",
    _D.USER: "user_tag",
    _D.API_KEY: "key_id",
    _D.MODEL: "model",
    _D.LINE_ITEM: "model",
    _D.BATCH: "batch_id != ''",
}
_AVAILABLE: dict[Source, frozenset[Dimension]] = {
    Source.RAW: frozenset(_COLUMN),
    Source.HOUR: frozenset({_D.PROJECT, _D.API_KEY, _D.MODEL, _D.LINE_ITEM}),
    Source.MINUTE: frozenset({_D.PROJECT, _D.MODEL, _D.LINE_ITEM}),
}
_GRAIN: dict[Source, int] = {Source.HOUR: 3600, Source.MINUTE: 60, Source.RAW: 1}
_TIME_COLUMN: dict[Source, str] = {Source.HOUR: "hour", Source.MINUTE: "minute", Source.RAW: "ts"}
# Aliases differ from column names on purpose: ClickHouse lets an alias shadow a column, and
# ``sum(input_tokens) AS input_tokens`` would then refer to itself.
_TOKENS = (
    "sum(input_tokens) AS n_input, sum(output_tokens) AS n_output,"
    " sum(cache_read_tokens) AS n_cached"
)
_METRICS: dict[tuple[UsageKind, bool], str] = {
    # (kind, from a rollup): the rollups hold a count per row, the raw table a row per attempt
    (UsageKind.COMPLETIONS, False): f"count() AS n_requests, {_TOKENS}",
    (UsageKind.COMPLETIONS, True): f"sum(requests) AS n_requests, {_TOKENS}",
    (UsageKind.COSTS, False): "sum(cost_usd) AS amount",
    (UsageKind.COSTS, True): "sum(cost_usd) AS amount",
}


@dataclass(frozen=True, kw_only=True)
class UsageQuery:
    """One page's worth of a usage or costs query, as parsed from OpenAI's parameters."""

    kind: UsageKind
    start_time: int
    end_time: int  # exclusive
    bucket_width: BucketWidth
    limit: int  # buckets per page
    page_start: int  # where this page begins: start_time, or the cursor of an earlier page
    group_by: tuple[Dimension, ...] = ()
    project_ids: frozenset[str] = frozenset()
    user_ids: frozenset[str] = frozenset()
    api_key_ids: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()
    batch: bool | None = None

    def buckets(self) -> list[tuple[int, int]]:
        """This page's buckets, each ``(start, end)``, clipped to the range."""
        width = self.bucket_width.seconds
        buckets: list[tuple[int, int]] = []
        lo = self.page_start
        while lo < self.end_time and len(buckets) < self.limit:
            hi = min((lo // width + 1) * width, self.end_time)
            buckets.append((lo, hi))
            lo = hi
        return buckets

    def next_page(self) -> str | None:
        """The cursor of the page after this one; None when this one is the last."""
        buckets = self.buckets()
        after = buckets[-1][1] if buckets else self.end_time
        return _encode_cursor(after, self.bucket_width) if after < self.end_time else None

    def dimensions(self) -> frozenset[Dimension]:
        """The dimensions the query reads, to group or to filter by."""
        filters: dict[Dimension, frozenset[str]] = {
            _D.USER: self.user_ids,
            _D.API_KEY: self.api_key_ids,
            _D.MODEL: self.models,
            _D.PROJECT: self.project_ids,
        }
        read: set[Dimension] = {d for d in self.group_by if d is not _D.SERVICE_TIER}
        read |= {d for d, values in filters.items() if values}
        if self.batch is not None:
            read.add(_D.BATCH)
        return frozenset(read)


def parse_usage_query(
    kind: UsageKind, params: Mapping[str, Sequence[str]], *, now_s: int
) -> UsageQuery:
    """``params``: each name with all the values it was given, in order; lists are taken as
    ``name[]`` (what OpenAI's SDKs send) or as the bare name. ``now_s`` ends a range that names
    no end. Unknown parameters are ignored, but not another endpoint's filters."""
    for name in _FOREIGN:
        takes = name in _FILTERS[kind] or (name == "batch" and kind is UsageKind.COMPLETIONS)
        if not takes and (name in params or f"{name}[]" in params):
            raise InvalidUsageQueryError(name, f"'{name}' is not a parameter of this endpoint.")
    start = _time(params, "start_time")
    if start is None:
        raise InvalidUsageQueryError("start_time", "'start_time' is required.")
    width = _bucket_width(kind, _one(params, "bucket_width"))
    seconds = width.seconds
    end = _time(params, "end_time")
    if end is None:
        end = max(-(-now_s // seconds) * seconds, start)
    elif end <= start:
        raise InvalidUsageQueryError("end_time", "'end_time' must be after 'start_time'.")
    default_limit, max_limit = _LIMITS[kind][width]
    limit = _integer(params, "limit")
    if limit is None:
        limit = default_limit
    elif not 1 <= limit <= max_limit:
        raise InvalidUsageQueryError(
            "limit", f"'limit' must be from 1 to {max_limit} for bucket_width={width.value}."
        )
    page = _one(params, "page")
    lists = {name: frozenset(_values(params, name)) for name in _FILTERS[kind]}
    return UsageQuery(
        kind=kind,
        start_time=start,
        end_time=end,
        bucket_width=width,
        limit=limit,
        page_start=start if page is None else _decode_cursor(page, width, start, end),
        group_by=_group_by(kind, params),
        project_ids=lists["project_ids"],
        user_ids=lists.get("user_ids", frozenset()),
        api_key_ids=lists["api_key_ids"],
        models=lists.get("models", frozenset()),
        batch=_boolean(params, "batch"),
    )


def error_body(exc: InvalidUsageQueryError) -> dict[str, Any]:
    code = ErrorCode.INVALID_REQUEST
    return {
        "error": {
            "message": str(exc),
            "type": code.openai_type,
            "param": exc.param,
            "code": code.value,
        }
    }


# ---- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageBucket:
    start_time: int
    end_time: int
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class UsagePage:
    buckets: list[UsageBucket]
    next_page: str | None  # the cursor of the next page; None on the last

    @property
    def has_more(self) -> bool:
        return self.next_page is not None

    def to_json(self) -> dict[str, Any]:
        """OpenAI's ``UsageResponse``; money stays Decimal (write it with ``render_json``)."""
        return {
            "object": "page",
            "data": [
                {
                    "object": "bucket",
                    "start_time": b.start_time,
                    "end_time": b.end_time,
                    "results": b.results,
                }
                for b in self.buckets
            ],
            "has_more": self.has_more,
            "next_page": self.next_page,
        }


def can_serve(source: Source, query: UsageQuery, lo: int, hi: int) -> bool:
    """Whether ``source`` answers the range ``[lo, hi)`` of ``query`` exactly: it holds every
    dimension asked for, and its grain neither splits a bucket nor straddles a bound."""
    grain = _GRAIN[source]
    return (
        query.dimensions() <= _AVAILABLE[source]
        and query.bucket_width.seconds % grain == 0
        and lo % grain == 0
        and hi % grain == 0
    )


def cheapest_source(query: UsageQuery, lo: int, hi: int) -> Source:
    return next(s for s in Source if can_serve(s, query, lo, hi))


async def read_usage(
    store: UsageStore,
    query: UsageQuery,
    *,
    visible_projects: frozenset[str] | None,
    source: Source | None = None,
) -> UsagePage:
    """One page of ``query``, over the projects in ``visible_projects`` (None: all).
    ``source``: read this table rather than the cheapest; a table that cannot answer the
    query exactly is a ValueError."""
    spans = query.buckets()
    tenants = _tenants(query.project_ids, visible_projects)
    rows: list[Sequence[Any]] = []
    if spans and query.kind is not UsageKind.EMBEDDINGS and tenants != frozenset():
        lo, hi = spans[0][0], spans[-1][1]
        chosen = source or cheapest_source(query, lo, hi)
        if not can_serve(chosen, query, lo, hi):
            raise ValueError(f"{chosen.value} cannot answer this query exactly")
        sql, parameters = _sql(query, chosen, lo, hi, tenants)

        def run(client: Client) -> list[Sequence[Any]]:
            return list(client.query(sql, parameters=parameters).result_rows)

        rows = await store.on_client(run)
    width = query.bucket_width.seconds
    by_bucket: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_bucket.setdefault(int(row[0]), []).append(_result(query, row[1:]))
    buckets = [UsageBucket(lo, hi, by_bucket.get(lo // width * width, [])) for lo, hi in spans]
    return UsagePage(buckets, query.next_page())


def _tenants(project_ids: frozenset[str], visible: frozenset[str] | None) -> frozenset[str] | None:
    if visible is None:
        return project_ids or None
    return visible & project_ids if project_ids else visible


def _grouped(query: UsageQuery) -> list[Dimension]:
    return [d for d in query.group_by if d is not _D.SERVICE_TIER]


def _sql(
    query: UsageQuery, source: Source, lo: int, hi: int, tenants: frozenset[str] | None
) -> tuple[str, dict[str, Any]]:
    time = _TIME_COLUMN[source]
    groups = _grouped(query)
    where = [
        f"{time} >= toDateTime({{lo:UInt32}}, 'UTC')",
        f"{time} < toDateTime({{hi:UInt32}}, 'UTC')",
    ]
    parameters: dict[str, Any] = {"lo": lo, "hi": hi, "width": query.bucket_width.seconds}
    if tenants is not None:
        where.append("tenant IN {tenants:Array(String)}")
        parameters["tenants"] = sorted(tenants)
    if query.user_ids:
        where.append("user_tag IN {users:Array(String)}")
        parameters["users"] = sorted(query.user_ids)
    if query.api_key_ids:
        where.append("key_id IN {keys:Array(String)}")
        parameters["keys"] = sorted(query.api_key_ids)
    if query.models:
        # A canonical id, or the id without its provider: substring after the first '/'
        # (position 0, no slash, gives the whole id).
        where.append(
            "(model IN {models:Array(String)}"
            " OR substring(model, position(model, '/') + 1) IN {models:Array(String)})"
        )
        parameters["models"] = sorted(query.models)
    if query.batch is not None:
        where.append("(batch_id != '') = {batch:UInt8}")
        parameters["batch"] = int(query.batch)
    keys = ["bucket", *(f"g{i}" for i in range(len(groups)))]
    select = [
        f"intDiv(toUnixTimestamp({time}), {{width:UInt32}}) * {{width:UInt32}} AS bucket",
        *(f"{_COLUMN[d]} AS g{i}" for i, d in enumerate(groups)),
        _METRICS[(query.kind, source is not Source.RAW)],
    ]
    table = f"{Source.RAW.value} FINAL" if source is Source.RAW else source.value
    sql = (
        f"SELECT {', '.join(select)} FROM {table} WHERE {' AND '.join(where)}"
        f" GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}"
    )
    if source is Source.RAW:
        sql += FINAL_SETTINGS
    return sql, parameters


def _result(query: UsageQuery, row: Sequence[Any]) -> dict[str, Any]:
    groups = _grouped(query)
    values = {d: _group_value(d, v) for d, v in zip(groups, row, strict=False)}
    metrics = row[len(groups) :]
    if query.kind is UsageKind.COSTS:
        (amount,) = metrics
        return {
            "object": "organization.costs.result",
            "amount": {"value": Decimal(amount), "currency": "usd"},
            "line_item": values.get(_D.LINE_ITEM),
            "project_id": values.get(_D.PROJECT),
            "api_key_id": values.get(_D.API_KEY),
            "quantity": None,
            "quantity_unit": None,
        }
    requests, input_tokens, output_tokens, cached = (int(m) for m in metrics)
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_cached_tokens": cached,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        "num_model_requests": requests,
        "project_id": values.get(_D.PROJECT),
        "user_id": values.get(_D.USER),
        "api_key_id": values.get(_D.API_KEY),
        "model": values.get(_D.MODEL),
        "batch": values.get(_D.BATCH),
        "service_tier": None,
    }


def _group_value(dimension: Dimension, value: Any) -> str | bool | None:
    if dimension is _D.BATCH:
        return bool(value)
    # No user tag, say, is no value: OpenAI's null, not an empty name.
    return str(value) or None


# ---- rendering ------------------------------------------------------------------------------


def render_json(value: Any) -> bytes:
    """``value`` as compact JSON, a Decimal written as a JSON number with exactly its digits.

    The standard encoder knows no Decimal, and turning one into a float first would write the
    float's nearest binary value instead (and lose digits beyond 17). OpenAI's schema types
    ``amount.value`` as a number, so a string would not do."""
    return "".join(_encode(value)).encode()


def _encode(value: Any) -> Iterable[str]:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a JSON number: {value}")
        # 'f' without a precision writes every digit and never an exponent (which JSON allows
        # but some readers mishandle); Decimal.normalize() would round to the context's 28.
        text = format(value, "f")
        yield text.rstrip("0").rstrip(".") if "." in text else text
    elif isinstance(value, dict):
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield ("," if i else "") + json.dumps(str(key)) + ":"
            yield from _encode(item)
        yield "}"
    elif isinstance(value, list | tuple):
        yield "["
        for i, item in enumerate(value):
            if i:
                yield ","
            yield from _encode(item)
        yield "]"
    elif value is None or isinstance(value, str | bool | int):
        yield json.dumps(value)
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


# ---- parameters -----------------------------------------------------------------------------

_CURSOR = struct.Struct(">QI")  # the next page's first bucket, and the bucket width it is for
_CURSOR_PREFIX = "page_"


def _encode_cursor(start: int, width: BucketWidth) -> str:
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(_CURSOR.pack(start, width.seconds)).decode()


def _decode_cursor(text: str, width: BucketWidth, start: int, end: int) -> int:
    invalid = InvalidUsageQueryError("page", "'page' is not a cursor of this query.")
    if not text.startswith(_CURSOR_PREFIX):
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(text[len(_CURSOR_PREFIX) :].encode("ascii"))
        at, seconds = _CURSOR.unpack(raw)
    except (binascii.Error, struct.error, UnicodeEncodeError, ValueError) as exc:
        raise invalid from exc
    # A cursor is always a bucket boundary strictly inside the range, for this bucket width.
    if seconds != width.seconds or at % seconds or not start < at < end:
        raise invalid
    return int(at)


def _one(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name, ())
    if len(values) > 1:
        raise InvalidUsageQueryError(name, f"'{name}' was given more than once.")
    return values[0] if values else None


def _integer(params: Mapping[str, Sequence[str]], name: str) -> int | None:
    value = _one(params, name)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise InvalidUsageQueryError(name, f"'{name}' must be a non-negative integer.")
    return int(value)


def _time(params: Mapping[str, Sequence[str]], name: str) -> int | None:
    value = _integer(params, name)
    if value is not None and value > MAX_TIME:
        raise InvalidUsageQueryError(name, f"'{name}' must be Unix seconds before the year 2100.")
    return value


def _bucket_width(kind: UsageKind, value: str | None) -> BucketWidth:
    allowed = _LIMITS[kind]
    if value is None:
        return BucketWidth.DAY
    for width in allowed:
        if value == width.value:
            return width
    names = ", ".join(f"'{w.value}'" for w in allowed)
    raise InvalidUsageQueryError("bucket_width", f"'bucket_width' must be one of {names}.")


def _values(params: Mapping[str, Sequence[str]], name: str) -> list[str]:
    values = [*params.get(f"{name}[]", ()), *params.get(name, ())]
    if len(values) > _MAX_VALUES:
        raise InvalidUsageQueryError(f"{name}[]", f"At most {_MAX_VALUES} values of '{name}[]'.")
    for value in values:
        if not value or len(value) > _MAX_VALUE_CHARS:
            raise InvalidUsageQueryError(
                f"{name}[]", f"Values of '{name}[]' are 1 to {_MAX_VALUE_CHARS} characters."
            )
    return values


def _group_by(kind: UsageKind, params: Mapping[str, Sequence[str]]) -> tuple[Dimension, ...]:
    allowed = {d.value: d for d in _GROUPS[kind]}
    chosen: list[Dimension] = []
    for value in _values(params, "group_by"):
        dimension = allowed.get(value)
        if dimension is None:
            names = ", ".join(f"'{d}'" for d in allowed)
            raise InvalidUsageQueryError("group_by[]", f"Cannot group by '{value}': use {names}.")
        if dimension not in chosen:
            chosen.append(dimension)
    return tuple(chosen)


def _boolean(params: Mapping[str, Sequence[str]], name: str) -> bool | None:
    value = _one(params, name)
    if value is None:
        return None
    if value.lower() not in {"true", "false"}:
        raise InvalidUsageQueryError(name, f"'{name}' must be true or false.")
    return value.lower() == "true"
