"""A real chDB store per test module, migrated: chDB admits one data directory per process at a
time, so each module opens its own and closes it after."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from services.metering.store import UsageStore


@pytest.fixture(scope="module")
def chdb_dsn(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp(f"chdb-{request.module.__name__.rpartition('.')[2]}")
    return f"chdb://{path}"


@pytest.fixture(scope="module")
async def store(chdb_dsn: str) -> AsyncIterator[UsageStore]:
    store = UsageStore.connect(chdb_dsn)
    await store.migrate()
    yield store
    store.close()


@pytest.fixture(scope="module")
def clickhouse(store: UsageStore, chdb_dsn: str) -> Iterator[Client]:
    """A second client on the same directory, for checking what the store wrote."""
    client = clickhouse_connect.get_client(dsn=chdb_dsn)
    yield client
    client.close()
