"""Schema migrations: the numbered SQL files under ``migrations/``, applied in order at start.

Each applied file is recorded in ``schema_migrations``; a file already recorded is not run again.
Every statement is written to be idempotent (``IF NOT EXISTS``), so a crash between running a
file and recording it only means the file runs again, harmlessly.

A file holds one or more statements separated by ``;``. Lines starting with ``--`` are comments
and are dropped before splitting, so a comment may contain ``;``; a string literal may not.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
"""


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        body = "\n".join(
            line for line in self.sql.splitlines() if not line.lstrip().startswith("--")
        )
        return [statement.strip() for statement in body.split(";") if statement.strip()]


def load_migrations() -> list[Migration]:
    migrations: dict[int, Migration] = {}
    for entry in resources.files("services.metering.migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(f"two migrations numbered {version:04d}")
        migrations[version] = Migration(version, match.group(2), entry.read_text("utf-8"))
    return [migrations[version] for version in sorted(migrations)]


def apply_migrations(client: Client, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply the migrations not yet recorded, in order; return those applied now. Blocking."""
    client.command(_LEDGER_DDL)
    applied = {
        int(version): str(checksum)
        for version, checksum in client.query(
            "SELECT version, argMax(checksum, applied_at) FROM schema_migrations GROUP BY version"
        ).result_rows
    }
    done: list[Migration] = []
    for migration in load_migrations() if migrations is None else migrations:
        recorded = applied.get(migration.version)
        if recorded is not None:
            if recorded != migration.checksum:
                # An applied file was edited. Re-running it would be wrong and refusing to start
                # over a comment fix would be worse; a schema change needs a new numbered file.
                log.warning("migration %04d_%s changed after it was applied", *_label(migration))
            continue
        for statement in migration.statements():
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        log.info("applied migration %04d_%s", *_label(migration))
        done.append(migration)
    return done


def _label(migration: Migration) -> tuple[int, str]:
    return migration.version, migration.name
