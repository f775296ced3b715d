"""``UsageStore``: the metering service's only door to ClickHouse.

It speaks through clickhouse-connect to either engine the DSN names: ``chdb:///path`` (chDB, the
embedded engine, in this process) or ``http(s)://...`` (a ClickHouse server). chDB is blocking
and allows one process per data directory, so every call runs in a worker thread, one at a time,
behind a lock; the HTTP client is not safe for concurrent queries on one session either.

Reads use ``FINAL``: ``usage_events`` is a ReplacingMergeTree, and an unmerged duplicate must not
count twice.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, ConfigDict

from contracts.usage import UsageEvent
from services.common.pricing import Pricing
from services.metering.rows import COLUMNS, to_row
from services.metering.schema import Migration, apply_migrations

_T = TypeVar("_T")

TABLE = "usage_events"
# For a ``SELECT ... FROM usage_events FINAL``: collapse copies within each partition only. Every
# copy of an event has its ``ts``, and both the partition (month of ts) and the sort key (which
# holds the day of ts) follow from it, so copies never sit in two partitions; without this,
# FINAL widens a read of the last hour to every granule whose key range overlaps it, which over
# 10M rows took a request-log page from about 90 ms to 480 ms.
FINAL_SETTINGS = " SETTINGS do_not_merge_across_partitions_select_final = 1"


class GroupBy(StrEnum):
    MODEL = "model"
    PROVIDER = "provider"
    KEY = "key"
    TASK = "task"  # the task type automatic choice read (empty for named models)
    POLICY = "policy"  # the routing policy that chose the model

    @property
    def column(self) -> str:
        return {GroupBy.KEY: "key_id", GroupBy.TASK: "task_type"}.get(self, self.value)


class SummaryRow(BaseModel):
    """Totals of one group over a window. ``cost_usd`` serialises as a string: JSON numbers are
    floats to most readers, and money must not pass through a float."""

    model_config = ConfigDict(frozen=True)

    group: str
    requests: int
    ok: int
    errors: int
    unpriced: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cost_usd: Decimal


_SUMMARY_FIELDS = tuple(SummaryRow.model_fields)


@dataclass(frozen=True, slots=True)
class PricedEvent:
    event: UsageEvent
    pricing: Pricing
    price_version: str


class UsageStore:
    def __init__(self, client: Client) -> None:
        self._client = client
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, dsn: str) -> UsageStore:
        """Open the store the DSN names. Blocking; for chDB this opens the data directory."""
        return cls(clickhouse_connect.get_client(dsn=dsn))

    def close(self) -> None:
        with self._lock:
            self._client.close()

    async def migrate(self) -> list[Migration]:
        return await self._run(apply_migrations, self._client)

    async def ping(self) -> bool:
        try:
            return bool(await self._run(self._client.command, "SELECT 1"))
        except Exception:
            return False

    async def existing_event_ids(self, events: Sequence[UsageEvent]) -> set[str]:
        """Which of these events are stored already. Exact: it reads the table, not a cache."""
        if not events:
            return set()
        # A stored copy of an event has the same timestamp, so bounding by the batch's time span
        # lets ClickHouse skip every other partition and granule.
        result = await self._run(
            self._client.query,
            f"SELECT DISTINCT event_id FROM {TABLE}"
            " WHERE ts BETWEEN fromUnixTimestamp64Milli({lo:Int64}, 'UTC')"
            " AND fromUnixTimestamp64Milli({hi:Int64}, 'UTC')"
            " AND event_id IN {ids:Array(String)}",
            parameters={
                "lo": min(e.ts_ms for e in events),
                "hi": max(e.ts_ms for e in events),
                "ids": [e.event_id for e in events],
            },
        )
        return {str(row[0]) for row in result.result_rows}

    async def insert_events(self, events: Sequence[PricedEvent]) -> None:
        if not events:
            return
        rows = [to_row(p.event, p.pricing, p.price_version) for p in events]
        await self._run(self._client.insert, TABLE, rows, column_names=list(COLUMNS))

    async def summary(
        self, since: timedelta, by: GroupBy, *, tenants: frozenset[str] | None = None
    ) -> list[SummaryRow]:
        """``tenants``: only these projects' rows; None: everyone's."""
        # Aliases differ from column names on purpose: ClickHouse lets an alias shadow a column,
        # and ``sum(input_tokens) AS input_tokens`` would then refer to itself.
        result = await self._run(
            self._client.query,
            f"SELECT {by.column} AS grp, count() AS n, countIf(status = 'ok') AS n_ok,"
            " countIf(status != 'ok') AS n_errors, countIf(NOT priced) AS n_unpriced,"
            " sum(input_tokens) AS tokens_in, sum(output_tokens) AS tokens_out,"
            " sum(cache_read_tokens) AS tokens_cache_read, sum(cost_usd) AS cost"
            f" FROM {TABLE} FINAL"
            " WHERE ts >= now64(3) - toIntervalMillisecond({window_ms:UInt64})"
            " AND ({everyone:Bool} OR tenant IN {tenants:Array(String)})"
            " GROUP BY grp ORDER BY cost DESC, n DESC, grp",
            parameters={
                "window_ms": int(since.total_seconds() * 1000),
                **_tenant_filter(tenants),
            },
        )
        return [
            SummaryRow.model_validate(dict(zip(_SUMMARY_FIELDS, row, strict=True)))
            for row in result.result_rows
        ]

    async def events_for(
        self, request_id: str, *, tenants: frozenset[str] | None = None
    ) -> list[dict[str, Any]]:
        """Every stored attempt of one request, oldest first, all columns, JSON-ready; none
        when the request is not of ``tenants`` (None: anyone's)."""
        result = await self._run(
            self._client.query,
            # Timestamps leave as epoch milliseconds: chDB returns DateTime64 without its zone.
            "SELECT * EXCEPT (ts, ingested_at), toUnixTimestamp64Milli(ts) AS ts_ms,"
            " toUnixTimestamp64Milli(ingested_at) AS ingested_at_ms"
            f" FROM {TABLE} FINAL WHERE request_id = {{rid:String}}"
            " AND ({everyone:Bool} OR tenant IN {tenants:Array(String)})"
            " ORDER BY attempt, ts_ms",
            parameters={"rid": request_id, **_tenant_filter(tenants)},
        )
        return [
            {name: _json_value(value) for name, value in zip(result.column_names, row, strict=True)}
            for row in result.result_rows
        ]

    async def on_client(self, call: Callable[[Client], _T]) -> _T:
        """Run ``call`` with this store's client, in a worker thread, behind its lock: how the
        stores of other tables (``audit_store``) share the one client chDB allows."""
        return await self._run(call, self._client)

    async def _run(self, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        return await asyncio.to_thread(self._locked, call, *args, **kwargs)

    def _locked(self, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        with self._lock:
            return call(*args, **kwargs)


def _tenant_filter(tenants: frozenset[str] | None) -> dict[str, Any]:
    return {"everyone": tenants is None, "tenants": sorted(tenants or ())}


def _json_value(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value
