from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from clickhouse_connect.driver.client import Client

from contracts._base import now_ms
from contracts.usage import UsageEvent
from services.common.pricing import price
from services.metering.metrics import MeteringMetrics
from services.metering.recorder import UsageRecorder
from services.metering.rows import COLUMNS, to_row
from services.metering.schema import apply_migrations, load_migrations
from services.metering.store import GroupBy, PricedEvent, SummaryRow, UsageStore
from tests.unit.metering.metering_factories import priced_catalogue, usage_event

CATALOGUE = priced_catalogue()


def recorder(store: UsageStore) -> UsageRecorder:
    return UsageRecorder(store, CATALOGUE, MeteringMetrics())


def priced(event: UsageEvent) -> PricedEvent:
    return PricedEvent(event, price(event, CATALOGUE.get(event.model)), CATALOGUE.version)


def count(clickhouse: Client, *, final: bool = True) -> int:
    sql = f"SELECT count() FROM usage_events{' FINAL' if final else ''}"
    return int(clickhouse.query(sql).result_rows[0][0])


async def test_migrations_are_recorded_and_not_run_twice(
    store: UsageStore, clickhouse: Client
) -> None:
    assert await store.migrate() == []
    assert apply_migrations(clickhouse) == []

    recorded = clickhouse.query("SELECT version, name FROM schema_migrations FINAL ORDER BY 1")
    expected = [(m.version, m.name) for m in load_migrations()]
    assert recorded.result_rows == expected
    assert [v for v, _ in expected] == [1, 2, 3, 4, 5, 6, 7, 8, 9]


async def test_an_event_is_stored_with_every_field(store: UsageStore) -> None:
    event = usage_event(
        "req-fields",
        2,
        ts_ms=1_767_268_800_123,
        usage={
            "input_tokens": 1200,
            "output_tokens": 300,
            "cache_read_tokens": 1000,
            "cache_write_tokens": 0,
            "reasoning_tokens": 100,
        },
        timings={"queue_ms": 3, "vendor_ms": 900, "total_ms": 910, "overhead_ms": 10},
        task_type="code",
        difficulty=0.72,
        policy="auto:balanced",
        route_reason="auto",
        batch_id="batch-1",
        simulated=True,
        tags={"team": "search"},
    )

    await store.insert_events([priced(event)])
    [row] = await store.events_for("req-fields")

    assert row["event_id"] == "req-fields:2"
    assert row["attempt"] == 2
    assert row["ts_ms"] == 1_767_268_800_123
    assert row["protocol"] == "openai.chat_completions"
    assert (row["input_tokens"], row["cache_read_tokens"], row["reasoning_tokens"]) == (
        1200,
        1000,
        100,
    )
    # (200 * 2.50 + 1000 * 1.25 + 300 * 10) / 1e6, kept as a string: money is not a float
    assert row["cost_usd"] == "0.004750000000"
    assert row["priced"] is True
    assert row["price_version"] == CATALOGUE.version
    assert row["ttft_ms"] is None
    assert row["error_class"] == ""
    assert row["simulated"] is True
    assert row["usage_estimated"] is False
    assert row["batch_id"] == "batch-1"
    assert (row["task_type"], row["policy"]) == ("code", "auto:balanced")
    assert row["difficulty"] == pytest.approx(0.72)
    assert row["tags"] == {"team": "search"}


async def test_a_cut_stream_is_charged_what_it_delivered(store: UsageStore) -> None:
    cut = usage_event(
        "req-cut",
        status="error",
        error_class="vendor_error",
        usage={"input_tokens": 1000, "output_tokens": 21},
        usage_estimated=True,
    )
    refused = usage_event("req-refused", status="error", error_class="vendor_error", usage={})
    await recorder(store).record([cut, refused])

    [cut_row] = await store.events_for("req-cut")
    [refused_row] = await store.events_for("req-refused")

    # (1000 * 2.50 + 21 * 10) / 1e6, flagged: the tokens were counted, not reported
    assert (cut_row["status"], cut_row["cost_usd"], cut_row["usage_estimated"]) == (
        "error",
        "0.002710000000",
        True,
    )
    assert (refused_row["cost_usd"], refused_row["usage_estimated"]) == ("0E-12", False)
    assert cut_row["priced"] is refused_row["priced"] is True


async def test_usage_estimated_migration_keeps_old_rows_and_runs_twice(
    store: UsageStore, clickhouse: Client
) -> None:
    [migration] = [m for m in load_migrations() if m.name == "usage_estimated"]
    # The table as it was before 0003, holding a row written then.
    clickhouse.command("ALTER TABLE usage_events DROP COLUMN usage_estimated")
    old = usage_event("req-old", ts_ms=now_ms())
    row = to_row(old, price(old, CATALOGUE.get(old.model)), CATALOGUE.version)
    del row[COLUMNS.index("usage_estimated")]
    old_columns = [c for c in COLUMNS if c != "usage_estimated"]
    clickhouse.insert("usage_events", [row], column_names=old_columns)

    for _ in range(2):  # idempotent: a crash before it was recorded runs it again
        for statement in migration.statements():
            clickhouse.command(statement)

    [stored] = await store.events_for("req-old")
    assert (stored["usage_estimated"], stored["cost_usd"]) == (False, "0.007500000000")
    await store.insert_events([priced(usage_event("req-new", usage_estimated=True))])
    [new] = await store.events_for("req-new")
    assert new["usage_estimated"] is True


def test_an_event_from_before_usage_estimated_still_parses() -> None:
    old_wire = usage_event().model_dump_json(exclude={"usage_estimated"}).encode()
    assert b"usage_estimated" not in old_wire

    assert UsageEvent.model_validate_json(old_wire).usage_estimated is False


async def test_recorder_writes_a_redelivered_event_once(
    store: UsageStore, clickhouse: Client
) -> None:
    a, b, c = (usage_event(f"req-{n}") for n in "abc")

    first = await recorder(store).record([a, b, a])
    second = await recorder(store).record([b, c])

    assert (first.inserted, first.duplicates_in_batch, first.duplicates_stored) == (2, 1, 0)
    assert (second.inserted, second.duplicates_in_batch, second.duplicates_stored) == (1, 0, 1)
    assert count(clickhouse, final=False) == 3  # no FINAL needed
    assert await store.existing_event_ids([a, b, c, usage_event("req-d")]) == {
        a.event_id,
        b.event_id,
        c.event_id,
    }


async def test_summary_is_exact_per_model(store: UsageStore) -> None:
    now = now_ms()
    events = [
        usage_event(f"gpt-{n}", ts_ms=now, usage={"input_tokens": 1000 + n, "output_tokens": 333})
        for n in range(7)
    ]
    events += [
        usage_event(
            "claude-1",
            model="anthropic/claude-test",
            provider="anthropic",
            ts_ms=now,
            usage={"input_tokens": 5000, "cache_read_tokens": 4000, "output_tokens": 10},
        ),
        usage_event(
            "claude-2",
            model="anthropic/claude-test",
            provider="anthropic",
            ts_ms=now,
            status="error",
            error_class="vendor_overloaded",
            usage={},  # refused before any work: the worker sends no tokens
        ),
        usage_event("mystery", model="openai/gpt-unknown", ts_ms=now),
        usage_event("old", ts_ms=now - 2 * 3_600_000),  # outside the window
    ]
    await recorder(store).record(events)

    summary = {row.group: row for row in await store.summary(timedelta(hours=1), GroupBy.MODEL)}

    gpt_cost = sum(
        (Decimal(1000 + n) * Decimal("2.50") + 333 * Decimal(10) for n in range(7)), Decimal(0)
    ) / Decimal(1_000_000)
    assert summary["openai/gpt-test"] == SummaryRow(
        group="openai/gpt-test",
        requests=7,
        ok=7,
        errors=0,
        unpriced=0,
        input_tokens=7021,
        output_tokens=2331,
        cache_read_tokens=0,
        cost_usd=gpt_cost,
    )
    assert gpt_cost == Decimal("0.0408625")  # (7021 * 2.50 + 2331 * 10) / 1e6
    claude = summary["anthropic/claude-test"]
    assert (claude.requests, claude.ok, claude.errors) == (2, 1, 1)
    # the failed call consumed nothing and is free: (1000 * 3 + 4000 * 0.30 + 10 * 15) / 1e6
    assert claude.cost_usd == Decimal("0.00435")
    assert summary["openai/gpt-unknown"].unpriced == 1
    assert summary["openai/gpt-unknown"].cost_usd == 0

    by_provider = await store.summary(timedelta(hours=1), GroupBy.PROVIDER)
    assert [(row.group, row.requests) for row in by_provider] == [("openai", 8), ("anthropic", 2)]
    assert sum(row.cost_usd for row in by_provider) == gpt_cost + Decimal("0.00435")


async def test_reads_count_a_duplicate_that_slipped_past_dedupe_once(
    store: UsageStore, clickhouse: Client
) -> None:
    event = usage_event("req-race", ts_ms=now_ms())
    # Two inserts of one event, as two racing consumers would make: two parts, unmerged.
    await store.insert_events([priced(event)])
    await store.insert_events([priced(event)])

    assert count(clickhouse, final=False) == 2
    assert count(clickhouse) == 1
    [row] = await store.summary(timedelta(hours=1), GroupBy.KEY)
    assert (row.group, row.requests, row.cost_usd) == ("key-1", 1, Decimal("0.0075"))
    assert len(await store.events_for("req-race")) == 1


async def test_minute_rollup_adds_up(store: UsageStore, clickhouse: Client) -> None:
    now = now_ms()
    events = [
        usage_event(
            f"roll-{n}",
            ts_ms=now,
            timings={"total_ms": 100 * (n + 1)},
            usage={"input_tokens": 10, "output_tokens": 1},
        )
        for n in range(10)
    ]
    await recorder(store).record(events)

    rollup = clickhouse.query(
        "SELECT sum(requests), sum(ok), sum(input_tokens), sum(cost_usd),"
        " quantilesMerge(0.5, 0.9, 0.99)(total_ms_quantiles)"
        " FROM usage_minute WHERE model = 'openai/gpt-test'"
    ).result_rows[0]

    assert rollup[:4] == (10, 10, 100, Decimal("0.000350"))
    assert 500 <= rollup[4][0] <= 600


async def test_cost_by_task_type_and_policy(store: UsageStore) -> None:
    now = now_ms()
    events = [
        usage_event("task-1", ts_ms=now, task_type="code", policy="auto:balanced"),
        usage_event("task-2", ts_ms=now, task_type="code", policy="auto:cheap"),
        usage_event("task-3", ts_ms=now, task_type="chat", policy="auto:cheap"),
    ]
    await store.insert_events([priced(e) for e in events])
    by_task = {r.group: r.requests for r in await store.summary(timedelta(hours=1), GroupBy.TASK)}
    by_policy = {
        r.group: r.requests for r in await store.summary(timedelta(hours=1), GroupBy.POLICY)
    }
    assert by_task["code"] == 2
    assert by_task["chat"] == 1
    assert by_policy["auto:cheap"] == 2
    assert by_policy["auto:balanced"] == 1
