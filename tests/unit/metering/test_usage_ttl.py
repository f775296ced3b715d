"""Usage retention against a real chDB: the setting becomes the TTL of usage_events and its
rollups, is removed when unset, changes nothing when already in place, and expires old rows;
on a cluster it goes on the replicated tables, ON CLUSTER."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from clickhouse_connect.driver.client import Client
from pydantic import ValidationError

from services.common.pricing import price
from services.metering.retention import (
    RETAINED,
    Engine,
    RetentionError,
    apply_usage_retention,
    retention_statements,
)
from services.metering.settings import MeteringSettings
from services.metering.store import PricedEvent, UsageStore
from tests.unit.metering.metering_factories import priced_catalogue, usage_event

CATALOGUE = priced_catalogue()
DAY_MS = 86_400_000


@pytest.fixture
async def retained(store: UsageStore, clickhouse: Client) -> AsyncIterator[UsageStore]:
    """The store, emptied; every TTL removed afterwards, whatever the test did, since the other
    tests of this chDB directory must keep their rows."""
    try:
        yield store
    finally:
        apply_usage_retention(clickhouse, None)


async def retain(store: UsageStore, days: int | None) -> list[str]:
    # As the service does at start: in the store's thread, on its client.
    return await store.on_client(lambda client: apply_usage_retention(client, days))


def show_create(clickhouse: Client, table: str) -> str:
    return str(clickhouse.command(f"SHOW CREATE TABLE {table}"))


async def test_the_ttl_is_set_changed_and_removed(retained: UsageStore, clickhouse: Client) -> None:
    # Years, not days: the directory is shared, and nothing of another test may expire.
    assert await retain(retained, 3650) == [
        "ALTER TABLE usage_events MODIFY TTL toDateTime(ts) + toIntervalDay(3650)",
        "ALTER TABLE usage_minute MODIFY TTL minute + toIntervalDay(3650)",
        "ALTER TABLE usage_hour MODIFY TTL hour + toIntervalDay(3650)",
        "ALTER TABLE usage_day MODIFY TTL day + toIntervalDay(3650)",
    ]
    assert "TTL toDateTime(ts) + toIntervalDay(3650)" in show_create(clickhouse, "usage_events")
    assert "TTL minute + toIntervalDay(3650)" in show_create(clickhouse, "usage_minute")
    assert "TTL hour + toIntervalDay(3650)" in show_create(clickhouse, "usage_hour")
    assert "TTL day + toIntervalDay(3650)" in show_create(clickhouse, "usage_day")

    assert await retain(retained, 3650) == []  # in place already: nothing is altered

    assert len(await retain(retained, 4000)) == 4
    assert "toIntervalDay(4000)" in show_create(clickhouse, "usage_events")

    assert await retain(retained, None) == [
        "ALTER TABLE usage_events REMOVE TTL",
        "ALTER TABLE usage_minute REMOVE TTL",
        "ALTER TABLE usage_hour REMOVE TTL",
        "ALTER TABLE usage_day REMOVE TTL",
    ]
    for table in RETAINED:
        assert "TTL" not in show_create(clickhouse, table.name)
    # Unset twice is no error (ClickHouse refuses REMOVE TTL on a table without one).
    assert await retain(retained, None) == []


async def test_rows_older_than_the_retention_go_from_the_table_and_the_rollups(
    retained: UsageStore, clickhouse: Client
) -> None:
    now = int(time.time() * 1000)
    events = [
        usage_event("req-old", 0, ts_ms=now - 10 * DAY_MS),
        usage_event("req-new", 0, ts_ms=now - 3_600_000),
    ]
    await retained.insert_events(
        [PricedEvent(e, price(e, CATALOGUE.get(e.model)), CATALOGUE.version) for e in events]
    )
    await retain(retained, 2)
    for table in RETAINED:
        # A merge applies the TTL; FINAL forces one now rather than in the background.
        clickhouse.command(f"OPTIMIZE TABLE {table.name} FINAL")

    ids = clickhouse.query("SELECT request_id FROM usage_events FINAL").result_rows
    assert ids == [("req-new",)]
    for rollup in ("usage_minute", "usage_hour", "usage_day"):
        assert clickhouse.command(f"SELECT sum(requests) FROM {rollup}") == 1


def test_on_a_cluster_the_ttl_goes_on_the_local_tables_on_cluster() -> None:
    distributed = "Distributed('{cluster}', 'default', '{table}_local', rand())"
    engines = {
        table.name: Engine("Distributed", distributed.replace("{table}", table.name))
        for table in RETAINED
    }
    engines["usage_events_local"] = Engine(
        "ReplicatedReplacingMergeTree",
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/default/usage_events_local',"
        " '{replica}', ingested_at) PARTITION BY toYYYYMM(ts)"
        " ORDER BY (tenant, toDate(ts), model, event_id)"
        " TTL toDateTime(ts) + toIntervalDay(30) SETTINGS index_granularity = 8192",
    )
    for rollup in ("usage_minute", "usage_hour", "usage_day"):
        engines[f"{rollup}_local"] = Engine(
            "ReplicatedAggregatingMergeTree",
            "ReplicatedAggregatingMergeTree('/p', '{replica}') ORDER BY x"
            " SETTINGS index_granularity = 8192",
        )

    assert retention_statements(engines, 30) == [
        "ALTER TABLE usage_minute_local ON CLUSTER '{cluster}'"
        " MODIFY TTL minute + toIntervalDay(30)",
        "ALTER TABLE usage_hour_local ON CLUSTER '{cluster}' MODIFY TTL hour + toIntervalDay(30)",
        "ALTER TABLE usage_day_local ON CLUSTER '{cluster}' MODIFY TTL day + toIntervalDay(30)",
    ]
    assert retention_statements(engines, None) == [
        "ALTER TABLE usage_events_local ON CLUSTER '{cluster}' REMOVE TTL"
    ]


def test_a_missing_table_or_a_retention_under_a_day_is_refused() -> None:
    with pytest.raises(RetentionError, match="migrations run first"):
        retention_statements({}, 30)
    with pytest.raises(RetentionError, match="at least one day"):
        retention_statements({}, 0)


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWITCHYARD_USAGE_RETENTION_DAYS", raising=False)
    assert MeteringSettings().usage_retention_days is None
    monkeypatch.setenv("SWITCHYARD_USAGE_RETENTION_DAYS", "400")
    assert MeteringSettings().usage_retention_days == 400
    monkeypatch.setenv("SWITCHYARD_USAGE_RETENTION_DAYS", "")
    assert MeteringSettings().usage_retention_days is None
    for refused in ("0", "-5", "forever"):
        monkeypatch.setenv("SWITCHYARD_USAGE_RETENTION_DAYS", refused)
        with pytest.raises(ValidationError):
            MeteringSettings()
