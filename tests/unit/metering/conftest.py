"""A real chDB store in a temporary directory, migrated, emptied before each test.

chDB admits one data directory per process at a time, so the directory is opened once per
module and closed after it; tests share it and start from empty tables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from services.metering.store import UsageStore


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("metering-chdb")
    return f"chdb://{path}"


@pytest.fixture(scope="module")
async def migrated_store(chdb_dsn: str) -> AsyncIterator[UsageStore]:
    store = UsageStore.connect(chdb_dsn)
    await store.migrate()
    yield store
    store.close()


@pytest.fixture(scope="module")
def clickhouse(migrated_store: UsageStore, chdb_dsn: str) -> Iterator[Client]:
    """A second client on the same directory, for checking what the store wrote."""
    client = clickhouse_connect.get_client(dsn=chdb_dsn)
    yield client
    client.close()


@pytest.fixture
def store(migrated_store: UsageStore, clickhouse: Client) -> UsageStore:
    for table in ("usage_events", "usage_minute", "usage_hour", "usage_day"):
        clickhouse.command(f"TRUNCATE TABLE {table}")
    return migrated_store
