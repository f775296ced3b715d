"""OpenAI's Usage and Costs API over a real chDB: every answer checked against OpenAI's
``UsageResponse`` schema, money checked to the exact Decimal against a hand-computed table, and
the rollups checked against the raw rows they summarise."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import jsonschema_rs
import pytest
import yaml
from clickhouse_connect.driver.client import Client

from contracts.usage import UsageEvent
from services.common.pricing import price
from services.metering.api import create_app, usage_scope
from services.metering.metrics import MeteringMetrics
from services.metering.openai_usage import (
    Source,
    UsageKind,
    can_serve,
    parse_usage_query,
    read_usage,
)
from services.metering.openai_usage_api import router
from services.metering.store import PricedEvent, UsageStore
from services.stack._layout import REPO_ROOT
from tests.unit.metering.metering_factories import TWO_MODELS, usage_event

ADMIN_KEY = "sy-admin-test-key-0123456789abcdef"
SPEC = REPO_ROOT.parent / "shared" / "specs" / "openai-openapi.yaml"
COMPLETIONS = "/v1/organization/usage/completions"
EMBEDDINGS = "/v1/organization/usage/embeddings"
COSTS = "/v1/organization/costs"

DAY0 = 1_767_225_600  # 2026-01-01T00:00:00Z
MINUTE, HOUR, DAY = 60, 3600, 86_400
MS = 1000

CATALOGUE = TWO_MODELS
GPT, CLAUDE = "openai/gpt-test", "anthropic/claude-test"


def _at(seconds: int, millis: int = 0) -> int:
    return (DAY0 + seconds) * MS + millis


# The fixed event set, and by hand what each attempt costs (prices per million tokens).
EVENTS: dict[str, tuple[UsageEvent, Decimal]] = {
    # 2026-01-01 00:00:00.000, on the range's first instant: the bootstrap key's own call
    "admin": (
        usage_event(
            "r-admin",
            0,
            ts_ms=_at(0),
            tenant="admin",
            key_id="admin",
            model=CLAUDE,
            provider="anthropic",
            usage={"input_tokens": 7, "output_tokens": 1},
        ),
        Decimal("0.000036"),  # 7 * 3 + 1 * 15
    ),
    "plain": (
        usage_event(
            "r-a",
            0,
            ts_ms=_at(HOUR + 5 * MINUTE, 123),
            user_tag="u1",
            usage={"input_tokens": 1000, "output_tokens": 500},
        ),
        Decimal("0.0075"),  # 1000 * 2.50 + 500 * 10
    ),
    # a request whose first attempt failed before any work (free) and fell back to gpt-test,
    # which read 1500 of its 2000 input tokens from the cache
    "failed": (
        usage_event(
            "r-b",
            0,
            ts_ms=_at(HOUR + 10 * MINUTE),
            key_id="key-2",
            model=CLAUDE,
            provider="anthropic",
            status="error",
            error_class="vendor_overloaded",
            usage={},
        ),
        Decimal(0),
    ),
    "fallback": (
        usage_event(
            "r-b",
            1,
            ts_ms=_at(HOUR + 10 * MINUTE + 2),
            key_id="key-2",
            usage={"input_tokens": 2000, "cache_read_tokens": 1500, "output_tokens": 100},
        ),
        Decimal("0.004125"),  # 500 * 2.50 + 1500 * 1.25 + 100 * 10
    ),
    # cache reads and writes, in another project
    "cached": (
        usage_event(
            "r-c",
            0,
            ts_ms=_at(2 * HOUR + 30 * MINUTE),
            tenant="globex",
            key_id="key-3",
            user_tag="u9",
            model=CLAUDE,
            provider="anthropic",
            usage={
                "input_tokens": 5000,
                "cache_read_tokens": 3000,
                "cache_write_tokens": 1000,
                "output_tokens": 200,
            },
        ),
        Decimal("0.01065"),  # 1000 * 3 + 3000 * 0.30 + 1000 * 3.75 + 200 * 15
    ),
    # 2026-01-02 02:00, a line of a batch
    "batch": (
        usage_event(
            "r-d",
            0,
            ts_ms=_at(DAY + 2 * HOUR),
            mode="batch",
            lane="batch",
            batch_id="batch_1",
            usage={"input_tokens": 333, "output_tokens": 77},
        ),
        Decimal("0.0016025"),  # 333 * 2.50 + 77 * 10
    ),
    # 2026-01-04 23:59:59.999, the range's last instant: a stream the vendor cut, charged what
    # it delivered
    "cut": (
        usage_event(
            "r-e",
            0,
            ts_ms=_at(4 * DAY - 1, 999),
            user_tag="u2",
            status="error",
            error_class="vendor_error",
            usage_estimated=True,
            usage={"input_tokens": 10, "output_tokens": 3},
        ),
        Decimal("0.000055"),  # 10 * 2.50 + 3 * 10
    ),
    # just outside [DAY0, DAY0 + 4 days), on either side
    "before": (
        usage_event("r-f", 0, ts_ms=_at(0) - 1, usage={"input_tokens": 100, "output_tokens": 100}),
        Decimal("0.00125"),
    ),
    "after": (
        usage_event("r-g", 0, ts_ms=_at(4 * DAY), usage={"input_tokens": 100, "output_tokens": 1}),
        Decimal("0.00026"),
    ),
}
RANGE = {"start_time": str(DAY0), "end_time": str(DAY0 + 4 * DAY)}


@functools.cache
def _components() -> dict[str, Any]:
    # Through JSON: YAML reads date-like example strings as dates, which no JSON schema has.
    spec = json.loads(json.dumps(yaml.safe_load(SPEC.read_text(encoding="utf-8")), default=str))
    components: dict[str, Any] = spec["components"]
    return components


def assert_shape(schema: str, body: Any) -> None:
    document = {"$ref": f"#/components/schemas/{schema}", "components": _components()}
    jsonschema_rs.Draft202012Validator(document).validate(body)


def priced(event: UsageEvent) -> PricedEvent:
    return PricedEvent(event, price(event, CATALOGUE.get(event.model)), CATALOGUE.version)


@pytest.fixture
async def stored(store: UsageStore, clickhouse: Client) -> UsageStore:
    # The shared fixture empties usage_events and usage_minute; the hour rollup too, here.
    clickhouse.command("TRUNCATE TABLE usage_hour")
    await store.insert_events([priced(event) for event, _ in EVENTS.values()])
    return store


def app_of(store: UsageStore) -> Any:
    app = create_app(store, MeteringMetrics(), lambda: True, admin_key=ADMIN_KEY)
    app.include_router(router)
    return app


@pytest.fixture
async def api(stored: UsageStore) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_of(stored)),
        base_url="http://metering",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    ) as client:
        yield client


async def page(api: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    """One page, checked against OpenAI's schema; numbers read as Decimals, exactly."""
    response = await api.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert_shape("UsageResponse", response.json())
    body: dict[str, Any] = json.loads(response.text, parse_float=Decimal)
    return body


def starts(body: dict[str, Any]) -> list[tuple[int, int]]:
    return [(b["start_time"], b["end_time"]) for b in body["data"]]


def cost(*names: str) -> Decimal:
    return sum((EVENTS[n][1] for n in names), Decimal(0))


def totals(results: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    return (
        sum(r["num_model_requests"] for r in results),
        sum(r["input_tokens"] for r in results),
        sum(r["output_tokens"] for r in results),
        sum(r["input_cached_tokens"] for r in results),
    )


# ---- the hand-computed table --------------------------------------------------------------


def test_the_hand_computed_costs_are_what_pricing_says() -> None:
    for name, (event, expected) in EVENTS.items():
        assert price(event, CATALOGUE.get(event.model)).cost_usd == expected, name


async def test_daily_costs_are_exact(api: httpx.AsyncClient) -> None:
    body = await page(api, COSTS, **RANGE)

    assert starts(body) == [(DAY0 + n * DAY, DAY0 + (n + 1) * DAY) for n in range(4)]
    amounts = [[r["amount"] for r in b["results"]] for b in body["data"]]
    assert amounts == [
        [{"value": cost("admin", "plain", "failed", "fallback", "cached"), "currency": "usd"}],
        [{"value": cost("batch"), "currency": "usd"}],
        [],  # a day without usage is still a bucket
        [{"value": cost("cut"), "currency": "usd"}],
    ]
    assert amounts[0][0]["value"] == Decimal("0.022311")
    # The JSON number carries exactly these digits: no float rounding on the way.
    response = await api.get(COSTS, params=RANGE)
    assert '"value":0.022311,' in response.text
    assert '"value":0.0016025,' in response.text
    assert (body["has_more"], body["next_page"]) == (False, None)
    first = body["data"][0]["results"][0]
    assert first["object"] == "organization.costs.result"
    assert (first["line_item"], first["project_id"], first["api_key_id"]) == (None, None, None)
    assert (first["quantity"], first["quantity_unit"]) == (None, None)


async def test_costs_by_project_and_line_item(api: httpx.AsyncClient) -> None:
    body = await page(api, COSTS, **RANGE, limit=1, **{"group_by[]": ["project_id", "line_item"]})

    [day] = body["data"]
    got = {(r["project_id"], r["line_item"]): r["amount"]["value"] for r in day["results"]}
    assert got == {
        ("acme", CLAUDE): Decimal(0),  # the failed attempt: a request made, nothing charged
        ("acme", GPT): cost("plain", "fallback"),
        ("admin", CLAUDE): cost("admin"),
        ("globex", CLAUDE): cost("cached"),
    }
    assert body["has_more"] is True


async def test_costs_by_api_key_filtered(api: httpx.AsyncClient) -> None:
    body = await page(api, COSTS, **RANGE, api_key_ids=["key-2", "key-3"], group_by="api_key_id")

    by_day = [{r["api_key_id"]: r["amount"]["value"] for r in b["results"]} for b in body["data"]]
    assert by_day == [{"key-2": cost("failed", "fallback"), "key-3": cost("cached")}, {}, {}, {}]


# ---- completions --------------------------------------------------------------------------


async def test_daily_completions(api: httpx.AsyncClient) -> None:
    body = await page(api, COMPLETIONS, **RANGE)

    [first], [second], empty, [last] = (b["results"] for b in body["data"])
    assert first == {
        "object": "organization.usage.completions.result",
        "input_tokens": 7 + 1000 + 2000 + 5000,
        "output_tokens": 1 + 500 + 100 + 200,
        "input_cached_tokens": 1500 + 3000,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        # every attempt made, the failed one included
        "num_model_requests": 5,
        "project_id": None,
        "user_id": None,
        "api_key_id": None,
        "model": None,
        "batch": None,
        "service_tier": None,
    }
    assert (second["num_model_requests"], second["input_tokens"]) == (1, 333)
    assert empty == []
    assert (last["num_model_requests"], last["output_tokens"]) == (1, 3)


async def test_hourly_buckets_are_utc_hours(api: httpx.AsyncClient) -> None:
    body = await page(
        api, COMPLETIONS, start_time=DAY0, end_time=DAY0 + 4 * HOUR, bucket_width="1h"
    )

    assert starts(body) == [(DAY0 + n * HOUR, DAY0 + (n + 1) * HOUR) for n in range(4)]
    assert [totals(b["results"]) for b in body["data"]] == [
        (1, 7, 1, 0),
        (3, 3000, 600, 1500),
        (1, 5000, 200, 3000),
        (0, 0, 0, 0),
    ]
    assert body["data"][3]["results"] == []


async def test_minute_buckets(api: httpx.AsyncClient) -> None:
    start = DAY0 + HOUR
    body = await page(
        api,
        COMPLETIONS,
        start_time=start,
        end_time=start + 15 * MINUTE,
        bucket_width="1m",
        group_by="model",
    )

    assert len(body["data"]) == 15
    used = {
        (b["start_time"] - start) // MINUTE: [
            (r["model"], r["num_model_requests"]) for r in b["results"]
        ]
        for b in body["data"]
        if b["results"]
    }
    assert used == {5: [(GPT, 1)], 10: [(CLAUDE, 1), (GPT, 1)]}


async def test_unaligned_bounds_clip_the_first_and_last_bucket(api: httpx.AsyncClient) -> None:
    # From 01:05:01 (after "plain", at 01:05:00.123) to 02:30:00 (before "cached", at 02:30).
    start, end = DAY0 + HOUR + 5 * MINUTE + 1, DAY0 + 2 * HOUR + 30 * MINUTE
    body = await page(api, COMPLETIONS, start_time=start, end_time=end, bucket_width="1h")

    assert starts(body) == [(start, DAY0 + 2 * HOUR), (DAY0 + 2 * HOUR, end)]
    assert [totals(b["results"]) for b in body["data"]] == [(2, 2000, 100, 1500), (0, 0, 0, 0)]


async def test_group_by_every_dimension(api: httpx.AsyncClient) -> None:
    body = await page(
        api,
        COMPLETIONS,
        **RANGE,
        group_by=["project_id", "user_id", "api_key_id", "model", "batch", "service_tier"],
    )

    keys = [
        [
            (
                r["project_id"],
                r["user_id"],
                r["api_key_id"],
                r["model"],
                r["batch"],
                r["service_tier"],
            )
            for r in b["results"]
        ]
        for b in body["data"]
    ]
    assert keys == [
        [
            ("acme", None, "key-2", CLAUDE, False, None),
            ("acme", None, "key-2", GPT, False, None),
            ("acme", "u1", "key-1", GPT, False, None),
            ("admin", None, "admin", CLAUDE, False, None),
            ("globex", "u9", "key-3", CLAUDE, False, None),
        ],
        [("acme", None, "key-1", GPT, True, None)],
        [],
        [("acme", "u2", "key-1", GPT, False, None)],
    ]


async def test_filters(api: httpx.AsyncClient) -> None:
    async def day_totals(**params: Any) -> list[tuple[int, int, int, int]]:
        body = await page(api, COMPLETIONS, **RANGE, **params)
        return [totals(b["results"]) for b in body["data"]]

    none = (0, 0, 0, 0)
    assert await day_totals(**{"project_ids[]": "globex"}) == [
        (1, 5000, 200, 3000),
        none,
        none,
        none,
    ]
    assert await day_totals(user_ids=["u1", "u2"]) == [(1, 1000, 500, 0), none, none, (1, 10, 3, 0)]
    assert await day_totals(api_key_ids="key-2") == [(2, 2000, 100, 1500), none, none, none]
    # a canonical id, or the id without its provider, as a tool written for OpenAI sends it
    claude = [(3, 5007, 201, 3000), none, none, none]
    assert await day_totals(models=CLAUDE) == claude
    assert await day_totals(models="claude-test") == claude
    assert await day_totals(models="test") == [none] * 4
    assert await day_totals(batch="true") == [none, (1, 333, 77, 0), none, none]
    assert (await day_totals(batch="false"))[1] == none


async def test_embeddings_are_empty_buckets_in_the_right_shape(api: httpx.AsyncClient) -> None:
    body = await page(api, EMBEDDINGS, **RANGE, bucket_width="1h", group_by="model", limit=48)

    assert starts(body)[:2] == [(DAY0, DAY0 + HOUR), (DAY0 + HOUR, DAY0 + 2 * HOUR)]
    assert len(body["data"]) == 48
    assert all(b["results"] == [] for b in body["data"])
    assert body["has_more"] is True


# ---- pagination ---------------------------------------------------------------------------


async def test_pages_walk_the_whole_range(api: httpx.AsyncClient) -> None:
    params: dict[str, Any] = {**RANGE, "bucket_width": "1h", "limit": 30}
    buckets: list[dict[str, Any]] = []
    pages = 0
    while True:
        body = await page(api, COMPLETIONS, **params)
        pages += 1
        buckets += body["data"]
        if not body["has_more"]:
            assert body["next_page"] is None
            break
        assert body["next_page"].startswith("page_")
        params["page"] = body["next_page"]

    assert pages == 4  # 96 hours, 30 a page
    assert starts({"data": buckets}) == [
        (DAY0 + n * HOUR, DAY0 + (n + 1) * HOUR) for n in range(96)
    ]
    daily = (await page(api, COMPLETIONS, **RANGE))["data"]
    all_hours = [r for b in buckets for r in b["results"]]
    assert totals(all_hours) == totals([r for b in daily for r in b["results"]])
    assert totals(all_hours) == (7, 8007 + 333 + 10, 801 + 77 + 3, 4500)


async def test_a_cursor_from_another_width_is_refused(api: httpx.AsyncClient) -> None:
    first = await page(api, COMPLETIONS, **RANGE, limit=1)
    response = await api.get(
        COMPLETIONS, params={**RANGE, "bucket_width": "1h", "page": first["next_page"]}
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "page"


# ---- errors and scope ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        (COMPLETIONS, {}, "start_time"),
        (COMPLETIONS, {"start_time": "soon"}, "start_time"),
        (COMPLETIONS, {**RANGE, "bucket_width": "1w"}, "bucket_width"),
        (COMPLETIONS, {**RANGE, "limit": "32"}, "limit"),
        (COSTS, {**RANGE, "bucket_width": "1h"}, "bucket_width"),
        (COSTS, {**RANGE, "limit": "181"}, "limit"),
        (COSTS, {**RANGE, "group_by": "model"}, "group_by[]"),
        (EMBEDDINGS, {**RANGE, "batch": "true"}, "batch"),
    ],
)
async def test_bad_parameters_answer_openais_400(
    api: httpx.AsyncClient, path: str, params: dict[str, str], param: str
) -> None:
    response = await api.get(path, params=params)

    assert response.status_code == 400
    body = response.json()
    assert_shape("ErrorResponse", body)
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param


@pytest.mark.parametrize("path", [COMPLETIONS, EMBEDDINGS, COSTS])
async def test_every_route_needs_a_key(stored: UsageStore, path: str) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_of(stored)), base_url="http://metering"
    ) as anonymous:
        # a bad parameter too: the key is checked first, and a refusal says nothing more
        response = await anonymous.get(path, params={"start_time": "soon"})

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


@pytest.fixture
async def acme_only(stored: UsageStore) -> AsyncIterator[httpx.AsyncClient]:
    app = app_of(stored)

    async def only_acme() -> frozenset[str]:
        return frozenset({"acme"})

    app.dependency_overrides[usage_scope] = only_acme
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://metering"
    ) as client:
        yield client


async def test_a_scoped_caller_sees_its_projects_only(acme_only: httpx.AsyncClient) -> None:
    usage = await page(acme_only, COMPLETIONS, **RANGE, group_by="project_id")
    costs = await page(acme_only, COSTS, **RANGE, group_by="project_id")

    assert {r["project_id"] for b in usage["data"] for r in b["results"]} == {"acme"}
    assert [
        [(r["project_id"], r["amount"]["value"]) for r in b["results"]] for b in costs["data"]
    ] == [
        [("acme", cost("plain", "failed", "fallback"))],
        [("acme", cost("batch"))],
        [],
        [("acme", cost("cut"))],
    ]
    # Asking for another project yields nothing of it, not an error that says it exists.
    for path in (COMPLETIONS, COSTS):
        others = await page(acme_only, path, **RANGE, project_ids=["globex", "admin"])
        assert all(b["results"] == [] for b in others["data"])
        assert len(others["data"]) == 4
    mixed = await page(
        acme_only, COSTS, **RANGE, project_ids=["globex", "acme"], group_by="project_id"
    )
    assert {r["project_id"] for b in mixed["data"] for r in b["results"]} == {"acme"}


# ---- rollups against the raw rows ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        (UsageKind.COMPLETIONS, {"bucket_width": "1d"}),
        (UsageKind.COMPLETIONS, {"bucket_width": "1h", "limit": "96"}),
        (
            UsageKind.COMPLETIONS,
            {"bucket_width": "1d", "group_by": ["project_id", "api_key_id", "model"]},
        ),
        (
            UsageKind.COMPLETIONS,
            {"bucket_width": "1h", "limit": "96", "api_key_ids": "key-2", "models": "gpt-test"},
        ),
        (
            UsageKind.COMPLETIONS,
            {"bucket_width": "1h", "limit": "168", "project_ids": "acme", "group_by": "model"},
        ),
        (UsageKind.COSTS, {"group_by": ["project_id", "line_item", "api_key_id"]}),
        (UsageKind.COSTS, {"api_key_ids": "key-1"}),
    ],
)
async def test_the_hour_and_minute_rollups_agree_with_the_raw_rows(
    stored: UsageStore, kind: UsageKind, params: dict[str, str | list[str]]
) -> None:
    lists = {n: v if isinstance(v, list) else [v] for n, v in {**RANGE, **params}.items()}
    query = parse_usage_query(kind, lists, now_s=DAY0)
    lo, hi = DAY0, DAY0 + 4 * DAY
    visible = frozenset({"acme", "globex", "admin"})

    raw = await read_usage(stored, query, visible_projects=visible, source=Source.RAW)
    assert any(b.results for b in raw.buckets)
    for rollup in (Source.HOUR, Source.MINUTE):
        if can_serve(rollup, query, lo, hi):
            rolled = await read_usage(stored, query, visible_projects=visible, source=rollup)
            assert rolled == raw, rollup


async def test_minute_buckets_from_the_minute_rollup_agree_with_the_raw_rows(
    stored: UsageStore,
) -> None:
    params = {"start_time": [str(DAY0)], "end_time": [str(DAY0 + 3 * HOUR)], "bucket_width": ["1m"]}
    query = parse_usage_query(
        UsageKind.COMPLETIONS, {**params, "limit": ["180"], "group_by": ["model"]}, now_s=DAY0
    )
    assert can_serve(Source.MINUTE, query, DAY0, DAY0 + 3 * HOUR)

    raw = await read_usage(stored, query, visible_projects=None, source=Source.RAW)
    rolled = await read_usage(stored, query, visible_projects=None, source=Source.MINUTE)

    assert rolled == raw
    assert sum(len(b.results) for b in raw.buckets) == 5  # one per model and minute used


async def test_a_rollup_that_cannot_answer_is_refused(stored: UsageStore) -> None:
    query = parse_usage_query(
        UsageKind.COMPLETIONS,
        {"start_time": [str(DAY0)], "group_by": ["user_id"]},
        now_s=DAY0 + DAY,
    )
    with pytest.raises(ValueError, match="usage_hour cannot answer"):
        await read_usage(stored, query, visible_projects=None, source=Source.HOUR)


async def test_the_api_reads_the_rollups_when_it_can(
    api: httpx.AsyncClient, clickhouse: Client
) -> None:
    # A row in each rollup with no raw row behind it, on the empty third day: whatever shows it
    # was read from that rollup.
    day2 = DAY0 + 2 * DAY
    for table, time_column, input_tokens in (
        ("usage_hour", "hour", 42),
        ("usage_minute", "minute", 43),
    ):
        clickhouse.command(
            f"INSERT INTO {table} (tenant, {time_column}, provider, model, requests,"
            " input_tokens, cost_usd)"
            f" VALUES ('acme', toDateTime({day2}, 'UTC'), 'openai', '{GPT}', 1,"
            f" {input_tokens}, 0.5)"
        )

    daily = await page(api, COMPLETIONS, **RANGE)
    costs = await page(api, COSTS, **RANGE)
    minutes = await page(api, COMPLETIONS, start_time=day2, end_time=day2 + 60, bucket_width="1m")
    by_user = await page(api, COMPLETIONS, **RANGE, group_by="user_id")
    unaligned = await page(api, COMPLETIONS, start_time=day2 - 1, end_time=day2 + DAY)

    assert totals(daily["data"][2]["results"]) == (1, 42, 0, 0)  # usage_hour
    assert [r["amount"]["value"] for r in costs["data"][2]["results"]] == [Decimal("0.5")]
    assert totals(minutes["data"][0]["results"]) == (1, 43, 0, 0)  # usage_minute
    assert by_user["data"][2]["results"] == []  # no user in the rollups: the raw rows
    assert unaligned["data"][1]["results"] == []  # a bound inside the hour: the raw rows
