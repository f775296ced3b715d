"""Usage retention: how long ``usage_events`` and its rollups keep their rows.

The metering setting ``usage_retention_days`` (``SWITCHYARD_USAGE_RETENTION_DAYS``) becomes each
table's TTL at every start, after the migrations: ``MODIFY TTL <its time> + toIntervalDay(n)``,
or ``REMOVE TTL`` when the setting is unset (rows kept forever). ClickHouse deletes expired rows
as it merges. Every money report (costs by project and month, invoices) reads these rows, so
the setting must be at least as long as the organisation needs its costs (hence the warning at
every start with a retention set). Prepaid credit is not affected: the ledger is rebuilt from
``spend_month`` (migration 0008), which keeps no TTL.

Idempotent, and cheap when nothing changed: a table whose TTL already is the one wanted is left
alone, because each ``MODIFY TTL`` makes ClickHouse re-evaluate the TTL of every part
(``materialize_ttl_after_modify``), a rewrite not worth doing at every restart. The TTL is written
as ClickHouse prints it back (``toIntervalDay``, not ``INTERVAL n DAY``) so the two compare
equal. The setting owns these tables' TTL: one set by hand is replaced at the next start.

Not here: ``audit_log`` (kept as long as the organisation's policy says, migration 0005) and
``request_log`` (each row carries its own expiry, migration 0006).

On a cluster (``deploy/clickhouse/cluster.sql``) the names the services use are Distributed
tables, which hold no rows and take no TTL; the TTL goes on the replicated tables behind them,
``ON CLUSTER``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from services.metering.cluster_ddl import ON_CLUSTER, local_name

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetainedTable:
    name: str
    time: str  # the expression the TTL counts from: a DateTime of the row

    def ttl(self, days: int) -> str:
        return f"{self.time} + toIntervalDay({days})"


# The rows and the rollups made from them go at the same age: a rollup kept longer would show
# costs that usage_events can no longer explain.
RETAINED: tuple[RetainedTable, ...] = (
    RetainedTable("usage_events", "toDateTime(ts)"),
    RetainedTable("usage_minute", "minute"),
    RetainedTable("usage_hour", "hour"),
    RetainedTable("usage_day", "day"),
)

# engine_full: "... ORDER BY (...) TTL <expression> SETTINGS index_granularity = 8192".
_TTL = re.compile(r"\sTTL\s+(?P<ttl>.+?)(?:\s+SETTINGS\s.*)?$", re.DOTALL)


class RetentionError(RuntimeError):
    pass


def apply_usage_retention(client: Client, days: int | None) -> list[str]:
    """Give each table of ``RETAINED`` the TTL of ``days`` (None: none); return the statements
    run, none when every table had its TTL already. Blocking: run it in the store's thread."""
    names = [name for table in RETAINED for name in (table.name, local_name(table.name))]
    result = client.query(
        "SELECT name, engine, engine_full FROM system.tables"
        " WHERE database = currentDatabase() AND name IN {names:Array(String)}",
        parameters={"names": names},
    )
    engines = {str(name): Engine(str(kind), str(full)) for name, kind, full in result.result_rows}
    statements = retention_statements(engines, days)
    if days is not None:
        log.warning(
            "usage rows are kept %d days: costs older than that leave every report (prepaid "
            "credit keeps its own monthly totals)",
            days,
        )
    for statement in statements:
        client.command(statement)
        log.info("usage retention: %s", statement)
    return statements


@dataclass(frozen=True, slots=True)
class Engine:
    """A table's row of ``system.tables``: ``engine`` and ``engine_full``."""

    kind: str
    full: str

    @property
    def ttl(self) -> str | None:
        match = _TTL.search(self.full)
        return None if match is None else match.group("ttl").strip()


def retention_statements(engines: Mapping[str, Engine], days: int | None) -> list[str]:
    """The ALTERs that give each table of ``RETAINED`` the TTL of ``days``, given the engines of
    the tables (by name) as they are: none for a table that has that TTL already."""
    if days is not None and days < 1:
        raise RetentionError(f"usage retention must be at least one day, not {days}")
    statements: list[str] = []
    for table in RETAINED:
        target, engine = _holder(engines, table.name)
        wanted = None if days is None else table.ttl(days)
        if engine.ttl == wanted:
            continue
        change = "REMOVE TTL" if wanted is None else f"MODIFY TTL {wanted}"
        statements.append(f"ALTER TABLE {target} {change}")
    return statements


def _holder(engines: Mapping[str, Engine], table: str) -> tuple[str, Engine]:
    """Where the table's rows, and so its TTL, live: the table itself, or on a cluster its
    local tables, altered ON CLUSTER."""
    engine = engines.get(table)
    if engine is None:
        raise RetentionError(f"{table} does not exist; the migrations run first")
    if engine.kind != "Distributed":
        return table, engine
    local = engines.get(local_name(table))
    if local is None:
        raise RetentionError(f"{table} is Distributed but {local_name(table)} is missing")
    return f"{local_name(table)} {ON_CLUSTER}", local
