"""docs/analytics.md against a real chDB: every ```sql block of the page runs on a fixed set of
calls and gives the answer worked out by hand below, and the column tables of the page list the
columns the migrations create, so the page cannot drift from the schema.

The calls (prices per million tokens: gpt-test 2.50 in, 10 out, 1.25 cache read; claude-test 3
in, 15 out, 0.30 cache read, 3.75 cache write), with what each costs and would have cost without
its cache hits:

    id   request att project key     model   when (UTC)      status             cost     uncached
    E1   req-1   0   proj_a  key_a1  gpt     01-05 10:15:00  ok                 0.0075   0.0075
    E2   req-2   0   proj_a  key_a1  gpt     01-05 10:40:00  ok                 0.00475  0.006
    E3   req-3   0   proj_a  key_a2  claude  01-05 11:05:00  vendor_overloaded  0        0
    E4   req-3   1   proj_a  key_a2  gpt     01-05 11:05:01  ok                 0.02     0.02
    E5   req-4   0   proj_b  key_b1  claude  01-05 11:30:00  ok                 0.03915  0.06
    E6   req-5   0   proj_b  key_b1  claude  01-06 09:00:00  vendor_timeout     0        0
    E7   req-5   1   proj_b  key_b1  claude  01-06 09:00:02  vendor_timeout     0        0
    E8   req-5   2   proj_b  key_b1  claude  01-06 09:00:04  ok                 0.018    0.018
    E9   req-6   0   proj_a  key_a1  gpt     01-06 14:20:00  ok                 0.008    0.0105
    E10  req-7   0   proj_a  key_a2  gpt     01-06 14:50:00  ok                 0.00175  0.00175
    E11  req-8   0   proj_a  key_a1  gpt     01-07 00:00:00  ok (past the end)  2.5      2.5

E2: 1000 uncached in * 2.50 + 1000 cached * 1.25 + 100 out * 10 = 4750 µ$. E5: 1000 in * 3 +
8000 cache read * 0.30 + 1000 cache write * 3.75 + 2000 out * 15 = 39150 µ$; without the cache
10000 in * 3 + 30000 = 60000 µ$. E9: 1000 * 2.50 + 2000 * 1.25 + 300 * 10 = 8000 µ$.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from contracts.usage import UsageEvent
from services.common.pricing import price
from services.metering.store import PricedEvent, UsageStore
from tests.unit.metering.metering_factories import TWO_MODELS, usage_event

DOC = Path(__file__).resolve().parents[3] / "docs" / "analytics.md"

CATALOGUE = TWO_MODELS
GPT = {"provider": "openai", "model": "openai/gpt-test", "requested_model": "gpt-test"}
CLAUDE = {"provider": "anthropic", "model": "anthropic/claude-test", "requested_model": "claude"}
NO_USAGE: dict[str, int] = {}

PARAMETERS = {
    "start": "2026-01-05 00:00:00",
    "end": "2026-01-07 00:00:00",
    "user_tag": "user-42",
    "project": "proj_b",
}


def at(day: int, clock: str) -> int:
    hour, minute, second = (int(part) for part in clock.split(":"))
    return int(datetime(2026, 1, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


def call(
    request_id: str,
    attempt: int,
    project: str,
    key: str,
    model: dict[str, str],
    ts_ms: int,
    usage: dict[str, int],
    total_ms: int,
    *,
    error: str | None = None,
    **fields: Any,
) -> UsageEvent:
    return usage_event(
        request_id,
        attempt,
        tenant=project,
        key_id=key,
        ts_ms=ts_ms,
        usage=usage,
        timings={"total_ms": total_ms, "ttft_ms": fields.pop("ttft_ms", None)},
        status="ok" if error is None else "error",
        error_class=error,
        **model,
        **fields,
    )


def calls() -> list[UsageEvent]:
    summarise = {"task_type": "summarisation", "route_reason": "auto", "policy": "auto:balanced"}
    code = {"task_type": "code", "route_reason": "auto", "policy": "auto:balanced"}
    return [
        call("req-1", 0, "proj_a", "key_a1", GPT, at(5, "10:15:00"),
             {"input_tokens": 1000, "output_tokens": 500}, 100, user_tag="user-42", **code),
        call("req-2", 0, "proj_a", "key_a1", GPT, at(5, "10:40:00"),
             {"input_tokens": 2000, "cache_read_tokens": 1000, "output_tokens": 100}, 200,
             user_tag="user-42", **code),
        call("req-3", 0, "proj_a", "key_a2", CLAUDE, at(5, "11:05:00"), NO_USAGE, 300,
             error="vendor_overloaded", **summarise),
        call("req-3", 1, "proj_a", "key_a2", GPT, at(5, "11:05:01"),
             {"input_tokens": 4000, "output_tokens": 1000}, 400, **summarise),
        call("req-4", 0, "proj_b", "key_b1", CLAUDE, at(5, "11:30:00"),
             {"input_tokens": 10000, "cache_read_tokens": 8000, "cache_write_tokens": 1000,
              "output_tokens": 2000, "reasoning_tokens": 500}, 500, ttft_ms=120, mode="stream"),
        call("req-5", 0, "proj_b", "key_b1", CLAUDE, at(6, "09:00:00"), NO_USAGE, 600,
             error="vendor_timeout"),
        call("req-5", 1, "proj_b", "key_b1", CLAUDE, at(6, "09:00:02"), NO_USAGE, 700,
             error="vendor_timeout"),
        call("req-5", 2, "proj_b", "key_b1", CLAUDE, at(6, "09:00:04"),
             {"input_tokens": 1000, "output_tokens": 1000}, 800),
        call("req-6", 0, "proj_a", "key_a1", GPT, at(6, "14:20:00"),
             {"input_tokens": 3000, "cache_read_tokens": 2000, "output_tokens": 300}, 900,
             ttft_ms=50, mode="stream", user_tag="user-42", **code),
        call("req-7", 0, "proj_a", "key_a2", GPT, at(6, "14:50:00"),
             {"input_tokens": 500, "output_tokens": 50}, 1000, user_tag="user-7",
             task_type="extraction", route_reason="auto", mode="batch", lane="batch",
             batch_id="batch_1"),
        # At the end of the range, which is exclusive: no example may count it.
        call("req-8", 0, "proj_a", "key_a1", GPT, at(7, "00:00:00"),
             {"input_tokens": 1_000_000}, 50, user_tag="user-42", **code),
    ]  # fmt: skip


D5, D6 = date(2026, 1, 5), date(2026, 1, 6)
GPT_ID, CLAUDE_ID = GPT["model"], CLAUDE["model"]

# The answer of each example, worked out from the table of calls in the module docstring.
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    # day, project, model, attempts, spend
    "cost-by-project-model-day": [
        (D5, "proj_a", GPT_ID, 3, Decimal("0.03225")),  # E1 + E2 + E4
        (D5, "proj_a", CLAUDE_ID, 1, Decimal(0)),  # E3 failed, used nothing
        (D5, "proj_b", CLAUDE_ID, 1, Decimal("0.03915")),  # E5
        (D6, "proj_a", GPT_ID, 2, Decimal("0.00975")),  # E9 + E10
        (D6, "proj_b", CLAUDE_ID, 3, Decimal("0.018")),  # E6 + E7 + E8
    ],
    # provider, attempts, p95 total, p95 ttft: five latencies each, p95 at position 4 * 0.95 =
    # 3.8 of the sorted list, interpolated: 700 + 0.8 * 100 and 900 + 0.8 * 100.
    "p95-latency-by-provider": [
        ("anthropic", 5, 780, 120),  # 300, 500, 600, 700, 800; ttft of E5 only
        ("openai", 5, 980, 50),  # 100, 200, 400, 900, 1000; ttft of E9 only
    ],
    # project, prompt tokens, cached, spend, without cache, saved
    "cache-savings-by-project": [
        ("proj_b", 11000, 8000, Decimal("0.05715"), Decimal("0.078"), Decimal("0.02085")),
        ("proj_a", 10500, 3000, Decimal("0.042"), Decimal("0.04575"), Decimal("0.00375")),
    ],
    # project, requests, more than one attempt, moved model, rate
    "fallback-rate-by-project": [
        ("proj_a", 5, 1, 1, 0.2),  # req-3 fell back from claude to gpt
        ("proj_b", 2, 1, 0, 0.5),  # req-5 retried claude twice and stayed
    ],
    # task, requests, spend, per request
    "cost-by-task-type": [
        ("(model named)", 2, Decimal("0.05715"), Decimal("0.028575")),  # req-4, req-5
        ("code", 3, Decimal("0.02025"), Decimal("0.00675")),  # req-1, req-2, req-6
        ("summarisation", 1, Decimal("0.02"), Decimal("0.02")),  # req-3, two attempts
        ("extraction", 1, Decimal("0.00175"), Decimal("0.00175")),  # req-7
    ],
    # project, key, requests, tokens in + out, spend
    "top-keys-by-spend": [
        ("proj_b", "key_b1", 2, 14000, Decimal("0.05715")),
        ("proj_a", "key_a2", 2, 5550, Decimal("0.02175")),
        ("proj_a", "key_a1", 3, 6900, Decimal("0.02025")),
    ],
    # hour, provider, attempts, failed, rate
    "error-rate-by-provider-and-hour": [
        ("2026-01-05 10:00:00", "openai", 2, 0, 0.0),
        ("2026-01-05 11:00:00", "anthropic", 2, 1, 0.5),  # E3 failed, E5 ok
        ("2026-01-05 11:00:00", "openai", 1, 0, 0.0),
        ("2026-01-06 09:00:00", "anthropic", 3, 2, 0.6667),  # E6, E7 failed, E8 ok
        ("2026-01-06 14:00:00", "openai", 2, 0, 0.0),
    ],
    # project, day, requests, spend (user-42: E1, E2, E9; E11 is past the end)
    "spend-of-one-user-tag": [
        ("proj_a", D5, 2, Decimal("0.01225")),
        ("proj_a", D6, 1, Decimal("0.008")),
    ],
    # minute, attempts, failed, spend, p99 (proj_b): 600, 700, 800 -> 700 + 0.98 * 100
    "project-minute-by-minute": [
        ("2026-01-05 11:30:00", 1, 0, Decimal("0.03915"), 500),
        ("2026-01-06 09:00:00", 3, 2, Decimal("0.018"), 798),
    ],
}

_SQL_BLOCK = re.compile(r"^```sql\n(.*?)^```", re.MULTILINE | re.DOTALL)
_NAME = re.compile(r"^-- example: ([a-z0-9-]+)\n")
_PARAMETER = re.compile(r"\{(\w+):")
_COLUMNS = re.compile(r"<!-- columns: (\w+) -->\n(.*?)<!-- /columns -->", re.DOTALL)
_COLUMN_ROW = re.compile(r"^\| `(\w+)` \| ([^|]+) \|", re.MULTILINE)


def examples() -> dict[str, str]:
    found: dict[str, str] = {}
    for block in _SQL_BLOCK.findall(DOC.read_text("utf-8")):
        name = _NAME.match(block)
        assert name is not None, f"a sql block without '-- example: <name>':\n{block}"
        assert name.group(1) not in found, f"two examples named {name.group(1)}"
        found[name.group(1)] = block
    return found


def test_every_example_has_an_expected_answer() -> None:
    assert sorted(examples()) == sorted(EXPECTED)


@pytest.fixture
async def loaded(store: UsageStore, clickhouse: Client) -> Client:
    await store.insert_events(
        [PricedEvent(e, price(e, CATALOGUE.get(e.model)), CATALOGUE.version) for e in calls()]
    )
    return clickhouse


def plain(value: Any) -> Any:
    """A result value as the expectations write it: times as UTC text, days as dates."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_example_gives_the_hand_computed_answer(loaded: Client, name: str) -> None:
    sql = examples()[name]
    parameters = {key: PARAMETERS[key] for key in _PARAMETER.findall(sql)}
    rows = [tuple(plain(v) for v in row) for row in loaded.query(sql, parameters).result_rows]
    assert rows == EXPECTED[name]
    # Money comes back as Decimal, never as a float that merely looks equal.
    for row, expected in zip(rows, EXPECTED[name], strict=True):
        for value, wanted in zip(row, expected, strict=True):
            assert type(value) is type(wanted) or not isinstance(wanted, Decimal), (name, value)


@pytest.mark.parametrize("table", ["usage_events", "usage_minute", "usage_hour", "usage_day"])
def test_the_column_tables_list_every_column_with_its_type(clickhouse: Client, table: str) -> None:
    documented = dict(_COLUMNS.findall(DOC.read_text("utf-8")))
    assert table in documented, f"no <!-- columns: {table} --> table in the page"
    listed = [(name, kind.strip()) for name, kind in _COLUMN_ROW.findall(documented[table])]
    actual = clickhouse.query(
        "SELECT name, type FROM system.columns"
        " WHERE database = currentDatabase() AND table = {table:String} ORDER BY position",
        parameters={"table": table},
    ).result_rows
    assert listed == [tuple(row) for row in actual]


def test_the_fixture_costs_are_the_ones_in_the_docstring(loaded: Client) -> None:
    """The table the answers were worked from is what metering stored."""
    rows: Sequence[Sequence[Any]] = loaded.query(
        "SELECT request_id, attempt, cost_usd, cost_uncached_usd FROM usage_events FINAL"
        " ORDER BY ts"
    ).result_rows
    assert [(r, a, c, u) for r, a, c, u in rows] == [
        ("req-1", 0, Decimal("0.0075"), Decimal("0.0075")),
        ("req-2", 0, Decimal("0.00475"), Decimal("0.006")),
        ("req-3", 0, Decimal(0), Decimal(0)),
        ("req-3", 1, Decimal("0.02"), Decimal("0.02")),
        ("req-4", 0, Decimal("0.03915"), Decimal("0.06")),
        ("req-5", 0, Decimal(0), Decimal(0)),
        ("req-5", 1, Decimal(0), Decimal(0)),
        ("req-5", 2, Decimal("0.018"), Decimal("0.018")),
        ("req-6", 0, Decimal("0.008"), Decimal("0.0105")),
        ("req-7", 0, Decimal("0.00175"), Decimal("0.00175")),
        ("req-8", 0, Decimal("2.5"), Decimal("2.5")),
    ]
