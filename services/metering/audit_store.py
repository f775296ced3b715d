"""``AuditStore``: the ``audit_log`` table (migration 0005): writing audit events, and listing
them as OpenAI's ``GET /v1/organization/audit_logs`` filters and pages them.

It shares the ``UsageStore``'s client and lock (``UsageStore.on_client``): chDB allows one
client per data directory. Reads use ``FINAL``, as ``audit_log`` is a ReplacingMergeTree.

Listing is newest first, ordered by (ts, id): ids are random, so the time orders and the id only
breaks ties. The cursors are ids, as OpenAI's are: ``after`` continues past an event towards
older ones, ``before`` returns the page of newer events just before it (still newest first);
``has_more`` says whether more lie further in the direction read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from contracts.audit import AuditEvent
from services.metering.store import UsageStore

TABLE = "audit_log"
MAX_LIMIT = 100

COLUMNS: tuple[str, ...] = (
    "id",
    "schema_version",
    "type",
    "effective_at",
    "ts",
    "project_id",
    "project_name",
    "actor_type",
    "actor_api_key_id",
    "actor_api_key_type",
    "actor_user_id",
    "actor_user_email",
    "actor_service_account_id",
    "actor_ip_address",
    "actor_user_agent",
    "target_id",
    "outcome",
    "error_code",
    "details",
)

# What a listing reads back; timestamps leave as epoch milliseconds (chDB returns DateTime64
# without its zone).
_SELECT = (
    "SELECT id, type, toUnixTimestamp64Milli(ts) AS ts_ms, project_id, project_name,"
    " actor_type, actor_api_key_id, actor_api_key_type, actor_user_id, actor_user_email,"
    " actor_service_account_id, actor_ip_address, actor_user_agent, target_id, outcome,"
    f" error_code, details FROM {TABLE} FINAL"
)


@dataclass(frozen=True, kw_only=True)
class AuditQuery:
    """OpenAI's filters: each set narrows the listing to rows matching one of its values; an
    empty set does not filter. ``effective_at_*`` are epoch seconds."""

    effective_at_gt: int | None = None
    effective_at_gte: int | None = None
    effective_at_lt: int | None = None
    effective_at_lte: int | None = None
    project_ids: frozenset[str] = field(default_factory=frozenset)
    event_types: frozenset[str] = field(default_factory=frozenset)
    # A user, service account or API key id, as OpenAI's ``actor_ids[]``.
    actor_ids: frozenset[str] = field(default_factory=frozenset)
    actor_emails: frozenset[str] = field(default_factory=frozenset)
    resource_ids: frozenset[str] = field(default_factory=frozenset)
    limit: int = 20
    after: str | None = None
    before: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
        if self.after is not None and self.before is not None:
            raise ValueError("give after or before, not both")


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[AuditEvent]
    has_more: bool


class CursorNotFoundError(LookupError):
    """``after`` or ``before`` names no event the caller may see."""

    def __init__(self, param: str, audit_id: str) -> None:
        super().__init__(f"No audit log found with id '{audit_id}'.")
        self.param = param


class AuditStore:
    def __init__(self, store: UsageStore) -> None:
        self._store = store

    async def existing_ids(self, events: Sequence[AuditEvent]) -> set[str]:
        """Which of these events are stored already. Exact: it reads the table."""
        if not events:
            return set()
        # A stored copy has the same ts: bounding by the batch's span prunes partitions.
        sql = (
            f"SELECT DISTINCT id FROM {TABLE}"
            " WHERE ts BETWEEN fromUnixTimestamp64Milli({lo:Int64}, 'UTC')"
            " AND fromUnixTimestamp64Milli({hi:Int64}, 'UTC')"
            " AND id IN {ids:Array(String)}"
        )
        parameters = {
            "lo": min(e.ts_ms for e in events),
            "hi": max(e.ts_ms for e in events),
            "ids": [e.id for e in events],
        }
        result = await self._store.on_client(lambda c: c.query(sql, parameters=parameters))
        return {str(row[0]) for row in result.result_rows}

    async def insert(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        rows = [to_row(event) for event in events]

        def insert(client: Client) -> None:
            client.insert(TABLE, rows, column_names=list(COLUMNS))

        await self._store.on_client(insert)

    async def list_events(
        self, query: AuditQuery, *, visible_projects: frozenset[str] | None
    ) -> AuditPage:
        """One page of the events ``query`` selects, newest first. ``visible_projects``: the
        projects the caller may see, None for all; organisation-level events (no project) are
        visible only with None. Raises ``CursorNotFoundError`` for a cursor outside that."""
        if visible_projects is not None and not (visible_projects - {""}):
            return AuditPage([], has_more=False)
        where, parameters = _filters(query, visible_projects)
        cursor_id, param = (query.before, "before") if query.before else (query.after, "after")
        newer = query.before is not None
        if cursor_id is not None:
            cursor_ms = await self._cursor_ts(cursor_id, visible_projects)
            if cursor_ms is None:
                raise CursorNotFoundError(param, cursor_id)
            op = ">" if newer else "<"
            where.append(
                f"(ts {op} fromUnixTimestamp64Milli({{cursor_ms:Int64}}, 'UTC')"
                " OR (ts = fromUnixTimestamp64Milli({cursor_ms:Int64}, 'UTC')"
                f" AND id {op} {{cursor_id:String}}))"
            )
            parameters |= {"cursor_ms": cursor_ms, "cursor_id": cursor_id}
        direction = "ASC" if newer else "DESC"
        sql = (
            f"{_SELECT} WHERE {' AND '.join(where) or '1'}"
            f" ORDER BY ts {direction}, id {direction} LIMIT {{n:UInt32}}"
        )
        parameters["n"] = query.limit + 1
        result = await self._store.on_client(lambda c: c.query(sql, parameters=parameters))
        rows = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
        events = [from_row(row) for row in rows[: query.limit]]
        if newer:
            events.reverse()
        return AuditPage(events, has_more=len(rows) > query.limit)

    async def _cursor_ts(self, audit_id: str, visible: frozenset[str] | None) -> int | None:
        sql = f"SELECT toUnixTimestamp64Milli(ts) FROM {TABLE} FINAL WHERE id = {{id:String}}"
        parameters: dict[str, Any] = {"id": audit_id}
        if visible is not None:
            sql += " AND project_id IN {visible:Array(String)}"
            parameters["visible"] = sorted(visible - {""})
        result = await self._store.on_client(
            lambda c: c.query(sql + " LIMIT 1", parameters=parameters)
        )
        return int(result.result_rows[0][0]) if result.result_rows else None


def _filters(query: AuditQuery, visible: frozenset[str] | None) -> tuple[list[str], dict[str, Any]]:
    where: list[str] = []
    parameters: dict[str, Any] = {}
    # effective_at is ts in whole seconds: each bound becomes a bound on ts, which the table is
    # partitioned and ordered by.
    lower = [
        s * 1000
        for s in (
            query.effective_at_gte,
            None if query.effective_at_gt is None else query.effective_at_gt + 1,
        )
        if s is not None
    ]
    upper = [
        s * 1000
        for s in (
            query.effective_at_lt,
            None if query.effective_at_lte is None else query.effective_at_lte + 1,
        )
        if s is not None
    ]
    if lower:
        where.append("ts >= fromUnixTimestamp64Milli({lo_ms:Int64}, 'UTC')")
        parameters["lo_ms"] = max(lower)
    if upper:
        where.append("ts < fromUnixTimestamp64Milli({hi_ms:Int64}, 'UTC')")
        parameters["hi_ms"] = min(upper)
    if visible is not None:
        where.append("project_id IN {visible:Array(String)}")
        parameters["visible"] = sorted(visible - {""})
    for column, name, values in (
        ("project_id", "project_ids", query.project_ids),
        ("type", "event_types", query.event_types),
        ("actor_user_email", "actor_emails", query.actor_emails),
        ("target_id", "resource_ids", query.resource_ids),
    ):
        if values:
            where.append(f"{column} IN {{{name}:Array(String)}}")
            parameters[name] = sorted(values)
    if query.actor_ids:
        where.append(
            "(actor_user_id IN {actor_ids:Array(String)}"
            " OR actor_service_account_id IN {actor_ids:Array(String)}"
            " OR actor_api_key_id IN {actor_ids:Array(String)})"
        )
        parameters["actor_ids"] = sorted(query.actor_ids)
    return where, parameters


def to_row(event: AuditEvent) -> list[Any]:
    actor = event.actor
    return [
        event.id,
        event.schema_version,
        event.type,
        datetime.fromtimestamp(event.effective_at, tz=UTC),
        _utc(event.ts_ms),
        event.project_id or "",
        event.project_name or "",
        actor.type,
        actor.api_key_id or "",
        actor.api_key_type or "",
        actor.user_id or "",
        actor.user_email or "",
        actor.service_account_id or "",
        actor.ip_address or "",
        actor.user_agent or "",
        event.target_id or "",
        event.outcome,
        event.error_code or "",
        json.dumps(event.details, ensure_ascii=False, separators=(",", ":")),
    ]


def from_row(row: dict[str, Any]) -> AuditEvent:
    def opt(name: str) -> str | None:
        return str(row[name]) or None

    return AuditEvent.model_validate(
        {
            "id": row["id"],
            "type": row["type"],
            "ts_ms": int(row["ts_ms"]),
            "project_id": opt("project_id"),
            "project_name": opt("project_name"),
            "actor": {
                "type": row["actor_type"],
                "api_key_id": opt("actor_api_key_id"),
                "api_key_type": opt("actor_api_key_type"),
                "user_id": opt("actor_user_id"),
                "user_email": opt("actor_user_email"),
                "service_account_id": opt("actor_service_account_id"),
                "ip_address": opt("actor_ip_address"),
                "user_agent": opt("actor_user_agent"),
            },
            "target_id": opt("target_id"),
            "outcome": row["outcome"],
            "error_code": opt("error_code"),
            "details": json.loads(row["details"]),
        }
    )


def _utc(ts_ms: int) -> datetime:
    # Integer arithmetic: a float division would blur the milliseconds of a 13-digit timestamp.
    seconds, millis = divmod(ts_ms, 1000)
    return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(milliseconds=millis)
