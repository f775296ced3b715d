"""``GET /v1/usage/query`` over a real chDB and the request log's event set: groupings, buckets,
metrics, CSV, which table answers (and that both answer the same), scoping and bad input."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.common.pricing import price
from services.metering.analytics import (
    DEFAULT_METRICS,
    Bucket,
    Dimension,
    Metric,
    RequestLogQuery,
    Source,
    UsageQuery,
    parse_usage_query,
    request_log,
    run_query,
)
from services.metering.store import PricedEvent, UsageStore
from tests.unit.metering.metering_factories import usage_event
from tests.unit.metering.test_analytics_requests import (
    CATALOGUE,
    T0,
    T0_MS,
    WINDOW,
    client_of,
    recorded,
)

__all__ = ["recorded"]  # the fixture, shared with the request log's tests

QUERY = "/v1/usage/query"


@pytest.fixture
async def api(recorded: UsageStore) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(recorded) as client:
        yield client


async def ask(api: httpx.AsyncClient, **params: Any) -> httpx.Response:
    response = await api.get(QUERY, params={**WINDOW, **params})
    assert response.status_code == 200, response.text
    return response


def source(response: httpx.Response) -> str:
    return response.headers["x-switchyard-source"]


async def test_totals_without_grouping(api: httpx.AsyncClient) -> None:
    response = await ask(api)
    body = response.json()

    assert source(response) == "usage_hour"  # bounds on the hour
    assert (body["object"], body["bucket"], body["group_by"], body["has_more"]) == (
        "list",
        "none",
        [],
        False,
    )
    assert (body["since"], body["until"]) == ("2026-01-01T12:00:00Z", "2026-01-01T15:00:00Z")
    assert body["metrics"] == [m.value for m in DEFAULT_METRICS]
    assert body["data"] == [
        {
            "requests": 5,  # r-plain, r-failed, r-retry, r-fallback, r-batch
            "attempts": 9,
            "errors": 5,
            "input_tokens": 3300,
            "output_tokens": 950,
            "cache_read_tokens": 1400,
            "cache_write_tokens": 500,
            "reasoning_tokens": 100,
            "cost_usd": "0.017725000000",  # 0.007 + 0.0015 + 0.008175 + 0.00105
            "cost_uncached_usd": "0.020550000000",  # 0.0075 + 0.0015 + 0.0105 + 0.00105
            "savings_usd": "0.002825000000",
        }
    ]


async def test_by_model_requests_count_where_they_began(api: httpx.AsyncClient) -> None:
    body = (await ask(api, group_by="model", metrics="cost,requests,attempts,errors")).json()

    # Largest spend first. r-fallback began on openai and ended on anthropic: it is a request of
    # openai's, and an attempt of each.
    assert body["data"] == [
        {
            "model": "anthropic/claude-test",
            "cost_usd": "0.009225000000",
            "requests": 1,
            "attempts": 2,
            "errors": 0,
        },
        {
            "model": "openai/gpt-test",
            "cost_usd": "0.008500000000",
            "requests": 4,
            "attempts": 7,
            "errors": 5,
        },
    ]
    assert body["columns"] == ["model", "cost_usd", "requests", "attempts", "errors"]


async def test_several_dimensions_and_repeated_group_by(api: httpx.AsyncClient) -> None:
    response = await ask(
        api, group_by=["project", "provider,lane"], metrics=["requests", "cost"], bucket="none"
    )

    assert source(response) == "usage_hour"
    assert [
        (r["project"], r["provider"], r["lane"], r["requests"], r["cost_usd"])
        for r in response.json()["data"]
    ] == [
        ("acme", "openai", "interactive", 4, "0.008500000000"),
        ("acme", "anthropic", "interactive", 0, "0.008175000000"),
        ("beta", "anthropic", "batch", 1, "0.001050000000"),
    ]


async def test_raw_dimensions(api: httpx.AsyncClient) -> None:
    by_status = await ask(api, group_by="status,error_class", metrics="attempts")
    by_attempt = await ask(api, group_by="attempt", metrics="attempts,cost")
    by_user = await ask(api, group_by="user_tag,requested_model,route_reason,policy,batch_id")

    assert source(by_status) == source(by_attempt) == source(by_user) == "usage_events"
    assert [(r["status"], r["error_class"], r["attempts"]) for r in by_status.json()["data"]] == [
        ("ok", "", 4),
        ("error", "vendor_overloaded", 2),
        ("error", "vendor_error", 1),
        ("error", "vendor_rate_limited", 1),
        ("error", "vendor_timeout", 1),
    ]
    assert [(r["attempt"], r["attempts"], r["cost_usd"]) for r in by_attempt.json()["data"]] == [
        (1, 3, "0.008175000000"),
        (0, 5, "0.008050000000"),
        (2, 1, "0.001500000000"),
    ]
    users = {r["user_tag"]: r for r in by_user.json()["data"]}
    assert set(users) == {"u1", "u2", ""}
    assert (users["u2"]["requested_model"], users["u2"]["policy"]) == ("auto", "balanced")
    assert users["u2"]["savings_usd"] == "0.002325000000"


async def test_hour_buckets(api: httpx.AsyncClient) -> None:
    response = await ask(api, group_by="provider", bucket="1h", metrics="cost,requests,attempts")

    assert source(response) == "usage_hour"
    assert [
        (r["bucket"], r["provider"], r["cost_usd"], r["requests"], r["attempts"])
        for r in response.json()["data"]
    ] == [
        ("2026-01-01T12:00:00Z", "openai", "0.008500000000", 3, 6),
        ("2026-01-01T13:00:00Z", "anthropic", "0.008175000000", 0, 1),
        ("2026-01-01T13:00:00Z", "openai", "0.000000000000", 1, 1),
        ("2026-01-01T14:00:00Z", "anthropic", "0.001050000000", 1, 1),
    ]
    assert response.json()["columns"] == ["bucket", "provider", "cost_usd", "requests", "attempts"]


async def test_day_and_week_buckets_cover_whole_buckets(api: httpx.AsyncClient) -> None:
    day = (await ask(api, bucket="1d", metrics="requests,cost")).json()
    week = (await ask(api, bucket="1w", metrics="requests,cost")).json()

    assert (day["since"], day["until"]) == ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
    assert day["data"] == [
        {"bucket": "2026-01-01T00:00:00Z", "requests": 5, "cost_usd": "0.017725000000"}
    ]
    # The week of Monday 2025-12-29 also holds r-old, from the 31st: 0.000125 more.
    assert (week["since"], week["until"]) == ("2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z")
    assert week["data"] == [
        {"bucket": "2025-12-29T00:00:00Z", "requests": 6, "cost_usd": "0.017850000000"}
    ]


async def test_minute_buckets_read_the_raw_rows(api: httpx.AsyncClient) -> None:
    response = await ask(api, bucket="1m", metrics="attempts")

    assert source(response) == "usage_events"
    assert [(r["bucket"], r["attempts"]) for r in response.json()["data"]] == [
        ("2026-01-01T12:00:00Z", 6),
        ("2026-01-01T13:00:00Z", 2),
        ("2026-01-01T14:00:00Z", 1),
    ]


async def test_latency_quantiles(api: httpx.AsyncClient) -> None:
    response = await ask(
        api,
        group_by="project",
        metrics="requests,p50_total_ms,p95_total_ms,p99_total_ms,p50_ttft_ms,p99_ttft_ms",
    )

    rows = {r["project"]: r for r in response.json()["data"]}
    # beta has one attempt: every quantile is its time; no attempt of it streamed, so no ttft.
    assert rows["beta"] == {
        "project": "beta",
        "requests": 1,
        "p50_total_ms": 2000.0,
        "p95_total_ms": 2000.0,
        "p99_total_ms": 2000.0,
        "p50_ttft_ms": None,
        "p99_ttft_ms": None,
    }
    acme = rows["acme"]
    assert 1100 <= acme["p50_total_ms"] <= acme["p95_total_ms"] <= acme["p99_total_ms"] <= 35_000
    assert 120 <= acme["p50_ttft_ms"] <= 250


async def test_unpriced_is_counted_from_the_raw_rows(api: httpx.AsyncClient) -> None:
    response = await ask(api, group_by="model", metrics="unpriced,attempts")

    assert source(response) == "usage_events"
    assert {r["model"]: r["unpriced"] for r in response.json()["data"]} == {
        "anthropic/claude-test": 0,
        "openai/gpt-test": 0,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"project": "beta"}, "usage_hour"),
        ({"key_id": "key-2", "task_type": "code", "lane": "interactive"}, "usage_hour"),
        ({"model": "openai/gpt-test", "provider": "openai"}, "usage_hour"),
        ({"status": "ok"}, "usage_events"),
        ({"user_tag": "u1"}, "usage_events"),
        ({"batch_id": "batch_1"}, "usage_events"),
        ({"request_id": "r-retry"}, "usage_events"),
        ({"attempt": "0"}, "usage_events"),
        ({"since": "2026-01-01T12:30:00Z"}, "usage_events"),  # inside an hour, unbucketed
        ({"since": "2026-01-01T12:30:00Z", "bucket": "1h"}, "usage_hour"),  # widened
        ({"since": "3650d", "until": None}, "usage_events"),  # from now: not on the hour
        ({"since": "3650d", "until": None, "bucket": "1d"}, "usage_day"),
        ({"since": "3650d", "until": None, "bucket": "1d", "group_by": "key_id"}, "usage_hour"),
        ({"bucket": "1w", "lane": "batch"}, "usage_day"),
        ({"bucket": "1d", "task_type": "code"}, "usage_hour"),  # usage_day keeps no task type
        ({"since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"}, "usage_day"),
        ({"bucket": "1m"}, "usage_events"),
    ],
)
async def test_the_source_header_says_which_table_answered(
    api: httpx.AsyncClient, params: dict[str, Any], expected: str
) -> None:
    query = {**WINDOW, "group_by": "model", **params}
    response = await api.get(QUERY, params={k: v for k, v in query.items() if v is not None})

    assert response.status_code == 200, response.text
    assert source(response) == expected
    assert response.json()["source"] == expected


async def test_filters_narrow_both_tables_alike(api: httpx.AsyncClient) -> None:
    rollup = await ask(api, project="acme", key_id="key-1", metrics="requests,cost")
    raw = await ask(api, project="acme", key_id="key-1", status=["ok", "error"])
    first = await ask(api, attempt="0", metrics="requests,attempts")

    assert (source(rollup), source(raw)) == ("usage_hour", "usage_events")
    assert rollup.json()["data"] == [{"requests": 3, "cost_usd": "0.008500000000"}]
    assert raw.json()["data"][0]["cost_usd"] == "0.008500000000"
    assert first.json()["data"] == [{"requests": 5, "attempts": 5}]


_ROLLUP_GROUPINGS = [
    (),
    (Dimension.MODEL,),
    (Dimension.PROJECT, Dimension.PROVIDER),
    (Dimension.KEY_ID, Dimension.TASK_TYPE, Dimension.LANE),
]


@pytest.mark.parametrize(
    ("group_by", "bucket"),
    list(itertools.product(_ROLLUP_GROUPINGS, [Bucket.NONE, Bucket.HOUR, Bucket.DAY, Bucket.WEEK])),
)
async def test_the_rollup_and_the_raw_rows_agree_exactly(
    recorded: UsageStore, group_by: tuple[Dimension, ...], bucket: Bucket
) -> None:
    query = UsageQuery(
        since=T0 - timedelta(days=2),
        until=T0 + timedelta(hours=3),
        group_by=group_by,
        bucket=bucket,
        metrics=tuple(m for m in Metric if m is not Metric.UNPRICED),
    )

    raw = await run_query(recorded, query, scope=None, source=Source.USAGE_EVENTS)
    scoped_raw = await run_query(
        recorded, query, scope=frozenset({"acme"}), source=Source.USAGE_EVENTS
    )
    day_answers = bucket in (Bucket.DAY, Bucket.WEEK) and Dimension.KEY_ID not in group_by
    rollups = [Source.USAGE_DAY] if day_answers else []
    rollups.append(Source.USAGE_HOUR)

    assert query.source is rollups[0]  # the narrowest that answers
    assert [s for s in (Source.USAGE_DAY, Source.USAGE_HOUR) if query.rollup_answers(s)] == rollups
    for source in rollups:
        rollup = await run_query(recorded, query, scope=None, source=source)
        scoped = await run_query(recorded, query, scope=frozenset({"acme"}), source=source)
        assert rollup.source is source
        assert rollup.rows == raw.rows
        assert rollup.rows  # not two empty answers
        assert scoped.rows == scoped_raw.rows
        assert scoped.rows != rollup.rows


async def test_batch_progress_by_day_reads_usage_day_and_agrees_with_the_raw_rows(
    recorded: UsageStore,
) -> None:
    query = UsageQuery(
        since=T0 - timedelta(days=2),
        bucket=Bucket.DAY,
        group_by=(Dimension.BATCH_ID, Dimension.LANE),
        metrics=(Metric.REQUESTS, Metric.ATTEMPTS, Metric.ERRORS, Metric.COST),
    )

    rollup = await run_query(recorded, query, scope=None)
    raw = await run_query(recorded, query, scope=None, source=Source.USAGE_EVENTS)

    assert (rollup.source, raw.source) == (Source.USAGE_DAY, Source.USAGE_EVENTS)
    assert rollup.rows == raw.rows
    assert {row["batch_id"] for row in rollup.rows} == {"", "batch_1"}


async def test_a_copy_stored_twice_counts_once_in_the_raw_answers(store: UsageStore) -> None:
    """Metering's dedupe keeps copies out, but a raw read must not trust that: FINAL collapses
    a copy (it is read within partitions only, where every copy of an event sits)."""
    event = usage_event("r-twice", 0, ts_ms=T0_MS + 60_000)
    priced = [PricedEvent(event, price(event, CATALOGUE.get(event.model)), CATALOGUE.version)]
    await store.insert_events(priced)
    await store.insert_events(priced)  # as if two consumers had raced
    query = UsageQuery(since=T0, until=T0 + timedelta(hours=1), request_ids=frozenset({"r-twice"}))

    answer = await run_query(store, query, scope=None)
    page = await request_log(
        store, RequestLogQuery(since=T0, request_ids=frozenset({"r-twice"})), scope=None
    )

    assert answer.source is Source.USAGE_EVENTS
    assert [(row["requests"], row["attempts"]) for row in answer.rows] == [(1, 1)]
    assert [(row["request_id"], row["attempts"]) for row in page.requests] == [("r-twice", 1)]


async def test_the_rollup_is_refused_where_it_cannot_answer(recorded: UsageStore) -> None:
    query = UsageQuery(since=T0, group_by=(Dimension.USER_TAG,))

    with pytest.raises(ValueError, match="usage_hour cannot answer"):
        await run_query(recorded, query, scope=None, source=Source.USAGE_HOUR)
    by_key = UsageQuery(since=T0, bucket=Bucket.DAY, group_by=(Dimension.KEY_ID,))
    with pytest.raises(ValueError, match="usage_day cannot answer"):
        await run_query(recorded, by_key, scope=None, source=Source.USAGE_DAY)


async def test_csv_has_a_header_and_exact_money(api: httpx.AsyncClient) -> None:
    response = await ask(
        api, group_by="model", bucket="1h", metrics="cost,requests,p50_ttft_ms", format="csv"
    )

    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert source(response) == "usage_hour"
    assert response.headers["x-switchyard-has-more"] == "false"
    assert list(csv.reader(io.StringIO(response.text))) == [
        ["bucket", "model", "cost_usd", "requests", "p50_ttft_ms"],
        ["2026-01-01T12:00:00Z", "openai/gpt-test", "0.008500000000", "3", "120.0"],
        ["2026-01-01T13:00:00Z", "anthropic/claude-test", "0.008175000000", "0", "250.0"],
        ["2026-01-01T13:00:00Z", "openai/gpt-test", "0.000000000000", "1", ""],
        ["2026-01-01T14:00:00Z", "anthropic/claude-test", "0.001050000000", "1", ""],
    ]


async def test_limit_says_when_rows_were_left_out(api: httpx.AsyncClient) -> None:
    body = (await ask(api, group_by="model", limit="1")).json()
    capped = await ask(api, group_by="model", limit="1", format="csv")

    assert body["has_more"] is True
    assert [r["model"] for r in body["data"]] == ["anthropic/claude-test"]
    assert capped.headers["x-switchyard-has-more"] == "true"
    assert len(capped.text.splitlines()) == 2


async def test_scope_limits_the_answer_to_the_callers_projects(recorded: UsageStore) -> None:
    async with client_of(recorded, frozenset({"beta"})) as beta:
        rollup = await beta.get(QUERY, params={**WINDOW, "group_by": "project"})
        raw = await beta.get(QUERY, params={**WINDOW, "group_by": "project,user_tag"})
        asked_for_acme = await beta.get(QUERY, params={**WINDOW, "project": "acme"})

    assert [r["project"] for r in rollup.json()["data"]] == ["beta"]
    assert [r["project"] for r in raw.json()["data"]] == ["beta"]
    assert asked_for_acme.json()["data"][0]["requests"] == 0


async def test_a_key_is_required(recorded: UsageStore) -> None:
    async with client_of(recorded, key=None) as anonymous:
        response = await anonymous.get(QUERY, params={"group_by": "model"})

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"group_by": "colour"}, "group_by"),
        ({"group_by": "model; DROP TABLE usage_events"}, "group_by"),
        ({"group_by": "model,model"}, "group_by"),
        ({"group_by": "tenant"}, "group_by"),  # the column's name; the dimension is project
        ({"metrics": "cost,cost"}, "metrics"),
        ({"metrics": "sum(cost_usd)"}, "metrics"),
        ({"metrics": "p90_total_ms"}, "metrics"),
        ({"bucket": "2h"}, "bucket"),
        ({"format": "xml"}, "format"),
        ({"limit": "0"}, "limit"),
        ({"limit": "100001"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"since": "1900-01-01"}, "since"),
        ({"until": "2026-01-01T11:00:00Z"}, "until"),  # before since
        ({"attempt": "first"}, "attempt"),
        ({"attempt": "70000"}, "attempt"),
        ({"tenant": "acme"}, "tenant"),  # unknown parameter
        ({"bucket": ["1h", "1d"]}, "bucket"),
    ],
)
async def test_bad_input_is_400_in_openais_shape(
    api: httpx.AsyncClient, params: dict[str, Any], param: str
) -> None:
    response = await api.get(QUERY, params={**WINDOW, **params})

    assert response.status_code == 400
    assert "x-switchyard-source" not in response.headers
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_request",
        param,
    )


async def test_a_filter_value_is_data_not_sql(api: httpx.AsyncClient) -> None:
    response = await ask(api, model="x' OR 1=1 --", metrics="attempts")

    assert response.json()["data"] == [{"attempts": 0}]


def test_parsing_reads_lists_both_ways_and_defaults() -> None:
    now = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    query, output = parse_usage_query(
        {"group_by": ["model, provider", "key_id"], "metrics": ["cost"], "since": ["2h"]},
        now=now,
    )
    default, _ = parse_usage_query({}, now=now)

    assert query.group_by == (Dimension.MODEL, Dimension.PROVIDER, Dimension.KEY_ID)
    assert (query.metrics, query.since, output.value) == (
        (Metric.COST,),
        datetime(2026, 3, 1, 10, 30, tzinfo=UTC),
        "json",
    )
    assert (default.since, default.until, default.metrics) == (
        now - timedelta(days=1),
        None,
        DEFAULT_METRICS,
    )
    assert default.source is Source.USAGE_EVENTS  # 24h back from 12:30: inside an hour


def test_buckets_align_to_utc_starts() -> None:
    moment = datetime(2026, 1, 1, 12, 34, 56, 789_000, tzinfo=UTC)  # a Thursday

    assert Bucket.MINUTE.start(moment) == datetime(2026, 1, 1, 12, 34, tzinfo=UTC)
    assert Bucket.HOUR.end(moment) == datetime(2026, 1, 1, 13, tzinfo=UTC)
    assert Bucket.DAY.start(moment) == datetime(2026, 1, 1, tzinfo=UTC)
    assert Bucket.WEEK.start(moment) == datetime(2025, 12, 29, tzinfo=UTC)
    assert Bucket.HOUR.end(datetime(2026, 1, 1, 13, tzinfo=UTC)) == datetime(
        2026, 1, 1, 13, tzinfo=UTC
    )


def test_money_columns_carry_their_currency() -> None:
    assert [m.field for m in Metric if m.is_money] == [
        "cost_usd",
        "cost_uncached_usd",
        "savings_usd",
    ]
