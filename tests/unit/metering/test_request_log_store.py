"""The request log table against a real chDB: entries of retaining projects, newest first, paged,
written once however often they are delivered, and never shown past their expiry."""

from __future__ import annotations

import time

import pytest
from clickhouse_connect.driver.client import Client

from contracts.request_log import RequestLogEntry
from services.metering.request_log import RequestLogStore
from services.metering.store import UsageStore


@pytest.fixture
async def logs(migrated_store: UsageStore, clickhouse: Client) -> RequestLogStore:
    clickhouse.command("TRUNCATE TABLE request_log")
    return RequestLogStore(migrated_store)


def entry(
    request_id: str, *, tenant: str = "proj_a", age_s: int = 0, ttl_s: int = 3600
) -> RequestLogEntry:
    now = int(time.time() * 1000) - age_s * 1000
    return RequestLogEntry(
        request_id=request_id,
        tenant=tenant,
        key_id="key_1",
        ts_ms=now,
        expires_at_ms=now + ttl_s * 1000,
        requested_model="gpt-4o-mini",
        model="openai/gpt-4o-mini",
        provider="openai",
        status="ok",
        attempts=1,
        request_json='{"messages": [{"role": "user", "content": "bonjour \\u00e9"}]}',
        response_json='{"choices": []}',
    )


async def test_entries_come_back_newest_first_in_pages(logs: RequestLogStore) -> None:
    await logs.insert([entry(f"r{i}", age_s=10 - i) for i in range(5)])
    first = await logs.page("proj_a", limit=2)
    assert [e["id"] for e in first.entries] == ["r4", "r3"]
    assert first.has_more
    rest = await logs.page("proj_a", limit=10, after="r3")
    assert [e["id"] for e in rest.entries] == ["r2", "r1", "r0"]
    assert not rest.has_more
    shown = first.entries[0]
    assert shown["request"]["messages"][0]["content"] == "bonjour é"
    assert shown["object"] == "project.request_log"


async def test_a_redelivered_entry_is_listed_once(logs: RequestLogStore) -> None:
    once = entry("r1")
    await logs.insert([once])
    await logs.insert([once])
    assert [e["id"] for e in (await logs.page("proj_a", limit=10)).entries] == ["r1"]


async def test_an_expired_entry_is_never_shown(logs: RequestLogStore) -> None:
    await logs.insert([entry("old", age_s=120, ttl_s=60), entry("live")])
    assert [e["id"] for e in (await logs.page("proj_a", limit=10)).entries] == ["live"]


async def test_a_project_sees_only_its_own_entries(logs: RequestLogStore) -> None:
    await logs.insert([entry("mine"), entry("theirs", tenant="proj_b")])
    assert [e["id"] for e in (await logs.page("proj_a", limit=10)).entries] == ["mine"]
    only = await logs.page("proj_a", limit=10, request_id="theirs")
    assert only.entries == []
