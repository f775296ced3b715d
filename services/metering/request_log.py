"""Request logs in ClickHouse (``request_log``, migration 0006): written from
``sy.request_log.v1`` and listed for a project's owners, newest first.

Only projects that opted into retention have rows; each row goes at ``expires_at`` (the table's
TTL), and a listing never shows one past it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry, Counter

from contracts.request_log import RequestLogEntry
from contracts.topics import REQUEST_LOG
from services.metering.consumer import BatchConsumer, ConsumerCounters
from services.metering.store import UsageStore

TABLE = "request_log"
GROUP_ID = "sy-metering-request-log"
MAX_LIMIT = 100

_COLUMNS = (
    "request_id",
    "tenant",
    "key_id",
    "ts",
    "expires_at",
    "requested_model",
    "model",
    "provider",
    "status",
    "error_code",
    "attempts",
    "stream",
    "request_json",
    "response_json",
)


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _row(entry: RequestLogEntry) -> list[Any]:
    return [
        entry.request_id,
        entry.tenant,
        entry.key_id,
        _time(entry.ts_ms),
        _time(entry.expires_at_ms),
        entry.requested_model,
        entry.model or "",
        entry.provider or "",
        entry.status,
        entry.error_code or "",
        entry.attempts,
        entry.stream,
        entry.request_json,
        entry.response_json or "",
    ]


@dataclass(frozen=True, slots=True)
class LogPage:
    entries: list[dict[str, Any]]
    has_more: bool


class RequestLogStore:
    def __init__(self, store: UsageStore) -> None:
        self._store = store

    async def insert(self, entries: Sequence[RequestLogEntry]) -> None:
        """Duplicates (a redelivered entry) collapse in the table: no need to look first."""
        if not entries:
            return
        rows = [_row(e) for e in entries]
        await self._store.on_client(
            lambda client: client.insert(TABLE, rows, column_names=list(_COLUMNS))
        )

    async def page(
        self, tenant: str, *, limit: int, after: str | None = None, request_id: str | None = None
    ) -> LogPage:
        """The project's live entries, newest first; ``after`` a request id to continue past,
        ``request_id`` for that one request only."""
        return await self._store.on_client(
            lambda client: _page(client, tenant, limit, after, request_id)
        )


def _page(
    client: Client, tenant: str, limit: int, after: str | None, request_id: str | None
) -> LogPage:
    parameters: dict[str, Any] = {"tenant": tenant, "limit": limit + 1}
    where = "tenant = {tenant:String} AND expires_at > now64(3)"
    if request_id is not None:
        where += " AND request_id = {rid:String}"
        parameters["rid"] = request_id
    if after is not None:
        where += (
            " AND (ts, request_id) < (SELECT ts, request_id FROM request_log FINAL"
            " WHERE tenant = {tenant:String} AND request_id = {after:String} LIMIT 1)"
        )
        parameters["after"] = after
    result = client.query(
        "SELECT request_id, key_id, toUnixTimestamp64Milli(ts) AS ts_ms,"
        " toUnixTimestamp64Milli(expires_at) AS expires_ms, requested_model, model, provider,"
        " status, error_code, attempts, stream, request_json, response_json"
        f" FROM {TABLE} FINAL WHERE {where}"
        " ORDER BY ts DESC, request_id DESC LIMIT {limit:UInt32}",
        parameters=parameters,
    )
    rows = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    return LogPage(entries=[_render(r) for r in rows[:limit]], has_more=len(rows) > limit)


def _render(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "project.request_log",
        "id": row["request_id"],
        "created_at": int(row["ts_ms"]) // 1000,
        "expires_at": int(row["expires_ms"]) // 1000,
        "key_id": row["key_id"],
        "requested_model": row["requested_model"],
        "model": row["model"] or None,
        "provider": row["provider"] or None,
        "status": row["status"],
        "error_code": row["error_code"] or None,
        "attempts": int(row["attempts"]),
        "stream": bool(row["stream"]),
        "request": json.loads(row["request_json"]),
        "response": json.loads(row["response_json"]) if row["response_json"] else None,
    }


def request_log_consumer(
    *,
    bootstrap: str,
    store: RequestLogStore,
    registry: CollectorRegistry,
    batch_max_events: int,
    batch_max_wait_ms: int,
) -> BatchConsumer[RequestLogEntry]:
    counters = ConsumerCounters(
        consumed=Counter(
            "sy_metering_request_log_consumed",
            "Messages read from the request log topic.",
            registry=registry,
        ),
        poison=Counter(
            "sy_metering_request_log_poison",
            "Messages on the request log topic that are not entries; sent to the DLQ.",
            registry=registry,
        ),
        failures=Counter(
            "sy_metering_request_log_failures",
            "Request log batches whose write failed and were read again.",
            registry=registry,
        ),
    )
    return BatchConsumer(
        bootstrap=bootstrap,
        topic=REQUEST_LOG.name,
        group_id=GROUP_ID,
        parse=RequestLogEntry.model_validate_json,
        write=store.insert,
        counters=counters,
        what="request log",
        batch_max_events=batch_max_events,
        batch_max_wait_ms=batch_max_wait_ms,
    )
