"""``GET /v1/usage/requests``, the request log, over a real chDB: one row per request from a fixed
event set with retries and fallbacks (attempts 0..2), each figure computed by hand; filters,
scoping and cursor pagination. The event set and the app are shared with the query's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.metering.analytics import LogCursor, RequestLogQuery, request_log
from services.metering.analytics_api import router
from services.metering.api import create_app, usage_scope
from services.metering.metrics import MeteringMetrics
from services.metering.recorder import UsageRecorder
from services.metering.store import UsageStore
from tests.unit.metering.metering_factories import TWO_MODELS, usage_event

ADMIN_KEY = "sy-admin-test-key-0123456789abcdef"
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)  # the factories' default time
T0_MS = int(T0.timestamp()) * 1000
# [12:00, 15:00) holds every request below but r-old
WINDOW = {"since": "2026-01-01T12:00:00Z", "until": "2026-01-01T15:00:00Z"}

CATALOGUE = TWO_MODELS
_CLAUDE = {"provider": "anthropic", "model": "anthropic/claude-test"}


def at(seconds: int) -> int:
    return T0_MS + seconds * 1000


EVENTS = [
    # r-plain: one attempt with a cache hit. 600 * 2.50 + 400 * 1.25 + 500 * 10 = 7000 (/1e6);
    # uncached 1000 * 2.50 + 5000 = 7500: saved 0.0005.
    usage_event(
        "r-plain",
        0,
        ts_ms=at(10),
        user_tag="u1",
        task_type="chat",
        usage={"input_tokens": 1000, "output_tokens": 500, "cache_read_tokens": 400},
        timings={"ttft_ms": 120, "total_ms": 900},
    ),
    # r-failed: two attempts, both failed and free; it starts in the same millisecond as r-plain.
    usage_event(
        "r-failed",
        0,
        ts_ms=at(10),
        status="error",
        error_class="vendor_overloaded",
        usage={},
        timings={"total_ms": 50},
    ),
    usage_event(
        "r-failed",
        1,
        ts_ms=at(11),
        status="error",
        error_class="vendor_overloaded",
        usage={},
        timings={"total_ms": 1100},
    ),
    # r-retry: a timeout, a rate limit, then an answer: 200 * 2.50 + 100 * 10 = 1500.
    usage_event(
        "r-retry",
        0,
        ts_ms=at(20),
        status="error",
        error_class="vendor_timeout",
        usage={},
        timings={"total_ms": 30_000},
    ),
    usage_event(
        "r-retry",
        1,
        ts_ms=at(21),
        status="error",
        error_class="vendor_rate_limited",
        usage={},
        timings={"total_ms": 31_000},
    ),
    usage_event(
        "r-retry",
        2,
        ts_ms=at(25),
        usage={"input_tokens": 200, "output_tokens": 100},
        timings={"total_ms": 35_000},
    ),
    # r-fallback, an hour later: openai fails, anthropic answers, with cache reads and writes and
    # reasoning. 500 * 3 + 1000 * 0.30 + 500 * 3.75 + 300 * 15 = 8175; uncached 2000 * 3 + 4500
    # = 10500: saved 0.002325.
    *(
        usage_event(
            "r-fallback",
            attempt,
            key_id="key-2",
            user_tag="u2",
            requested_model="auto",
            task_type="code",
            policy="balanced",
            route_reason="auto:code",
            **fields,
        )
        for attempt, fields in enumerate(
            [
                {
                    "ts_ms": at(3605),
                    "status": "error",
                    "error_class": "vendor_error",
                    "usage": {},
                    "timings": {"total_ms": 400},
                },
                {
                    "ts_ms": at(3608),
                    **_CLAUDE,
                    "usage": {
                        "input_tokens": 2000,
                        "output_tokens": 300,
                        "cache_read_tokens": 1000,
                        "cache_write_tokens": 500,
                        "reasoning_tokens": 100,
                    },
                    "timings": {"ttft_ms": 250, "total_ms": 3400},
                },
            ]
        )
    ),
    # r-batch: another project's batch line, two hours in: 100 * 3 + 50 * 15 = 1050.
    usage_event(
        "r-batch",
        0,
        ts_ms=at(7200),
        tenant="beta",
        key_id="key-3",
        lane="batch",
        mode="batch",
        batch_id="batch_1",
        **_CLAUDE,
        usage={"input_tokens": 100, "output_tokens": 50},
        timings={"total_ms": 2000},
    ),
    # r-old: the day before, outside the window.
    usage_event("r-old", 0, ts_ms=at(-86_400), usage={"input_tokens": 10, "output_tokens": 10}),
]


@pytest.fixture
async def recorded(store: UsageStore) -> UsageStore:
    await UsageRecorder(store, CATALOGUE, MeteringMetrics()).record(EVENTS)
    return store


def client_of(
    store: UsageStore, scope: frozenset[str] | None = None, *, key: str | None = ADMIN_KEY
) -> httpx.AsyncClient:
    """The metering app with the analytics routes; ``scope`` stands in for the projects a key
    may read (None: the admin key's, every project)."""
    app = create_app(store, MeteringMetrics(), lambda: True, admin_key=ADMIN_KEY)
    app.include_router(router)
    if scope is not None:

        async def only(_: Any = None) -> frozenset[str]:
            return scope

        app.dependency_overrides[usage_scope] = only
    headers = {} if key is None else {"authorization": f"Bearer {key}"}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://metering", headers=headers
    )


@pytest.fixture
async def api(recorded: UsageStore) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(recorded) as client:
        yield client


async def log(api: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await api.get("/v1/usage/requests", params={**WINDOW, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [row["request_id"] for row in body["data"]]


async def test_one_row_per_request_newest_first_with_every_figure(api: httpx.AsyncClient) -> None:
    body = await log(api)

    assert (body["object"], body["has_more"], body["next"]) == ("list", False, None)
    # r-plain and r-failed began in the same millisecond: the id breaks the tie, descending.
    assert ids(body) == ["r-batch", "r-fallback", "r-retry", "r-plain", "r-failed"]
    rows = {row["request_id"]: row for row in body["data"]}
    assert rows["r-fallback"] == {
        "object": "usage.request",
        "request_id": "r-fallback",
        "first_attempt_at": "2026-01-01T13:00:05Z",
        "last_attempt_at": "2026-01-01T13:00:08Z",
        "project": "acme",
        "key_id": "key-2",
        "user_tag": "u2",
        "requested_model": "auto",
        "model": "anthropic/claude-test",  # the last attempt's
        "provider": "anthropic",
        "route_reason": "auto:code",
        "task_type": "code",
        "policy": "balanced",
        "lane": "interactive",
        "batch_id": None,
        "status": "ok",
        "error_class": None,
        "attempts": 2,
        "input_tokens": 2000,
        "output_tokens": 300,
        "cache_read_tokens": 1000,
        "cache_write_tokens": 500,
        "reasoning_tokens": 100,
        "cost_usd": "0.008175000000",
        "cost_uncached_usd": "0.010500000000",
        "savings_usd": "0.002325000000",
        "cache_hit": True,
        "ttft_ms": 250,
        "total_ms": 3400,
    }
    retry = rows["r-retry"]
    assert (retry["attempts"], retry["status"], retry["error_class"]) == (3, "ok", None)
    assert (retry["cost_usd"], retry["savings_usd"], retry["cache_hit"]) == (
        "0.001500000000",
        "0.000000000000",
        False,
    )
    assert (retry["ttft_ms"], retry["total_ms"]) == (None, 35_000)  # the last attempt's
    assert (retry["first_attempt_at"], retry["last_attempt_at"]) == (
        "2026-01-01T12:00:20Z",
        "2026-01-01T12:00:25Z",
    )
    failed = rows["r-failed"]
    assert (failed["status"], failed["error_class"], failed["attempts"]) == (
        "error",
        "vendor_overloaded",
        2,
    )
    assert failed["cost_usd"] == "0.000000000000"  # failed calls are not charged
    plain = rows["r-plain"]
    assert (plain["cost_usd"], plain["cost_uncached_usd"], plain["savings_usd"]) == (
        "0.007000000000",
        "0.007500000000",
        "0.000500000000",
    )
    assert (plain["cache_hit"], plain["user_tag"], plain["task_type"]) == (True, "u1", "chat")
    batch = rows["r-batch"]
    assert (batch["project"], batch["lane"], batch["batch_id"], batch["cost_usd"]) == (
        "beta",
        "batch",
        "batch_1",
        "0.001050000000",
    )
    # Exact: the log's costs add up to the hand-computed total to the last digit.
    total = sum((Decimal(row["cost_usd"]) for row in body["data"]), Decimal(0))
    assert total == Decimal("0.007") + Decimal("0.0015") + Decimal("0.008175") + Decimal("0.00105")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"project": "beta"}, ["r-batch"]),
        ({"key_id": "key-2"}, ["r-fallback"]),
        ({"user_tag": "u1"}, ["r-plain"]),
        ({"task_type": "code"}, ["r-fallback"]),
        ({"batch_id": "batch_1"}, ["r-batch"]),
        ({"request_id": ["r-retry", "r-old"]}, ["r-retry"]),  # r-old: outside the window
        # model, provider and status: where the request ended, its last attempt
        ({"model": "openai/gpt-test"}, ["r-retry", "r-plain", "r-failed"]),
        ({"provider": "anthropic"}, ["r-batch", "r-fallback"]),
        ({"status": "error"}, ["r-failed"]),
        ({"status": "ok", "project": "acme"}, ["r-fallback", "r-retry", "r-plain"]),
        (
            {"model": ["anthropic/claude-test", "openai/gpt-test"], "key_id": "key-1"},
            ["r-retry", "r-plain", "r-failed"],
        ),
    ],
)
async def test_filters(api: httpx.AsyncClient, params: dict[str, Any], expected: list[str]) -> None:
    assert ids(await log(api, **params)) == expected


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        # a request is in the window its first attempt is in, whole
        ({"until": "2026-01-01T13:00:06Z"}, ["r-fallback", "r-retry", "r-plain", "r-failed"]),
        ({"until": "2026-01-01T12:00:10Z"}, []),  # until is exclusive
        # r-fallback began at 13:00:05: its later attempt alone does not bring it in
        ({"since": "2026-01-01T13:00:06Z"}, ["r-batch"]),
        ({"since": "2026-01-01T12:00:10.001Z"}, ["r-batch", "r-fallback", "r-retry"]),
        ({"since": "2025-12-31T00:00:00Z", "request_id": "r-old"}, ["r-old"]),
        # a zone of its own, or UTC
        (
            {"since": "2026-01-01T13:00:00+01:00", "until": "2026-01-01T12:00:11"},
            ["r-plain", "r-failed"],
        ),
    ],
)
async def test_time_window(
    api: httpx.AsyncClient, window: dict[str, str], expected: list[str]
) -> None:
    assert ids(await log(api, **window)) == expected


async def test_relative_windows_reach_back_from_now(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/usage/requests", params={"since": "7d"})
    everything = await api.get("/v1/usage/requests", params={"since": "3650d"})

    assert response.json()["data"] == []  # the event set is from the start of 2026
    assert len(everything.json()["data"]) == 6


async def test_cursor_pages_through_ties(api: httpx.AsyncClient) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"after": cursor} if cursor else {})
        body = await log(api, **params)
        seen += ids(body)
        pages += 1
        cursor = body["next"]
        assert body["has_more"] is (cursor is not None)
        if cursor is None:
            break

    assert pages == 3
    assert seen == ["r-batch", "r-fallback", "r-retry", "r-plain", "r-failed"]


async def test_cursor_is_opaque_and_round_trips() -> None:
    cursor = LogCursor(T0_MS, "req:with:colons")

    assert LogCursor.decode(cursor.encode()) == cursor
    assert "req" not in cursor.encode()


async def test_scope_limits_the_log_to_the_callers_projects(recorded: UsageStore) -> None:
    async with client_of(recorded, frozenset({"beta"})) as beta:
        own = await log(beta)
        other = await log(beta, project="acme")
        by_id = await log(beta, request_id="r-plain")

    assert ids(own) == ["r-batch"]
    assert ids(other) == []
    assert ids(by_id) == []


async def test_the_store_function_takes_the_scope(recorded: UsageStore) -> None:
    query = RequestLogQuery(since=T0, limit=10)

    everyone = await request_log(recorded, query, scope=None)
    nobody = await request_log(recorded, query, scope=frozenset())

    assert len(everyone.requests) == 5
    assert everyone.requests[0]["first_attempt_at"] == datetime(2026, 1, 1, 14, tzinfo=UTC)
    assert everyone.requests[0]["cost_usd"] == Decimal("0.00105")
    assert nobody.requests == []


async def test_a_key_is_required(recorded: UsageStore) -> None:
    async with client_of(recorded, key=None) as anonymous:
        response = await anonymous.get("/v1/usage/requests")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "not-a-cursor"}, "after"),
        ({"after": "bm9jb2xvbg"}, "after"),  # base64 of "nocolon"
        ({"after": LogCursor(10**15, "r-x").encode()}, "after"),  # past any datetime
        ({"since": "soon"}, "since"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
        ({"since": ["1h", "2h"]}, "since"),
        ({"modle": "x"}, "modle"),  # a misspelt filter must not widen the log
        ({"attempt": "0"}, "attempt"),  # not a filter of the log: a request has many
        ({"project": ""}, "project"),
        ({"user_tag": "x" * 513}, "user_tag"),
    ],
)
async def test_bad_parameters_are_400_in_openais_shape(
    api: httpx.AsyncClient, params: dict[str, Any], param: str
) -> None:
    response = await api.get("/v1/usage/requests", params=params)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_request",
        param,
    )
    assert error["message"]


class CountingStore:
    """A store that counts the queries sent through it."""

    def __init__(self, store: UsageStore) -> None:
        self._store = store
        self.queries = 0

    async def on_client(self, call: Any) -> Any:
        self.queries += 1
        return await self._store.on_client(call)


# Requests at these distances before NOW: three in the last hour, two a few hours back, two
# days back, one weeks back. The log reads the last hour first and widens only when it must.
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
_SPREAD_MINUTES = {"n1": 5, "n2": 10, "n3": 50, "h1": 180, "h2": 200, "d1": 2880, "d2": 3000}
SPREAD = [
    usage_event(rid, 0, ts_ms=int(NOW.timestamp() * 1000) - minutes * 60_000)
    for rid, minutes in {**_SPREAD_MINUTES, "w1": 30_000}.items()
]


@pytest.mark.parametrize(
    ("limit", "queries", "expected"),
    [
        (2, 1, ["n1", "n2"]),  # the last hour holds a page and one more
        (3, 2, ["n1", "n2", "n3"]),  # it holds the page but not one more: six hours do
        (5, 4, ["n1", "n2", "n3", "h1", "h2"]),  # six hours and a day hold five: a week, six
        (20, 5, [*_SPREAD_MINUTES, "w1"]),  # nothing short of the whole range holds them all
    ],
)
async def test_the_log_reads_the_newest_slice_first_and_widens_only_as_it_must(
    store: UsageStore, limit: int, queries: int, expected: list[str]
) -> None:
    await UsageRecorder(store, CATALOGUE, MeteringMetrics()).record(SPREAD)
    counting = CountingStore(store)
    query = RequestLogQuery(since=NOW - timedelta(days=30), limit=limit)

    page = await request_log(counting, query, scope=None, now=NOW)  # type: ignore[arg-type]

    assert [row["request_id"] for row in page.requests] == expected
    assert page.has_more is (limit < len(SPREAD))
    assert counting.queries == queries


async def test_paging_through_slices_sees_every_request_once_in_order(store: UsageStore) -> None:
    await UsageRecorder(store, CATALOGUE, MeteringMetrics()).record(SPREAD)
    seen: list[str] = []
    after: LogCursor | None = None
    while True:
        query = RequestLogQuery(since=NOW - timedelta(days=30), limit=2, after=after)
        page = await request_log(store, query, scope=None, now=NOW)
        seen += [row["request_id"] for row in page.requests]
        if (after := page.next) is None:
            break

    assert seen == [*_SPREAD_MINUTES, "w1"]
