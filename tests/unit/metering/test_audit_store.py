"""``audit_log`` in a real chDB: every field stored, each event written once, OpenAI's filters,
the caller's project scope, and both cursors."""

from __future__ import annotations

from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from contracts.audit import AuditEvent
from services.metering.audit_consumer import AuditMetrics, AuditRecorder
from services.metering.audit_store import AuditQuery, AuditStore, CursorNotFoundError
from services.metering.metrics import MeteringMetrics
from services.metering.store import UsageStore

T0 = 1_767_268_800  # 2026-01-01T12:00:00Z, epoch seconds

ADMIN = {"type": "api_key", "api_key_id": "key_admin", "api_key_type": "admin"}
ALICE = {
    "type": "session",
    "user_id": "user_alice",
    "user_email": "alice@example.com",
    "ip_address": "10.0.0.1",
}
CI_KEY = {
    "type": "api_key",
    "api_key_id": "key_ci",
    "api_key_type": "service_account",
    "service_account_id": "svc_ci",
}


def audit_event(
    type: str = "project.created", *, at_ms: int = T0 * 1000, **fields: Any
) -> AuditEvent:
    return AuditEvent.model_validate({"type": type, "ts_ms": at_ms, "actor": ADMIN, **fields})


# The listing, newest first: (name, event). Org-level events have no project.
EVENTS: dict[str, AuditEvent] = {
    "a_created": audit_event(
        "project.created",
        at_ms=T0 * 1000,
        project_id="proj_a",
        project_name="Alpha",
        target_id="proj_a",
        details={"name": "Alpha"},
    ),
    "a_key": audit_event(
        "api_key.created",
        at_ms=(T0 + 10) * 1000 + 500,
        project_id="proj_a",
        actor=ALICE,
        target_id="key_1",
    ),
    "b_created": audit_event(
        "project.created", at_ms=(T0 + 20) * 1000, project_id="proj_b", target_id="proj_b"
    ),
    "b_denied": audit_event(
        "request.denied",
        at_ms=(T0 + 30) * 1000 + 999,
        project_id="proj_b",
        actor=CI_KEY,
        target_id="openai/gpt-4o",
        outcome="denied",
        error_code="permission_denied",
        details={"reason": "model_not_allowed"},
    ),
    "org_user": audit_event(
        "user.added", at_ms=(T0 + 40) * 1000, actor=ALICE, target_id="user_bob"
    ),
    "a_used": audit_event(
        "api_key.used",
        at_ms=(T0 + 50) * 1000,
        project_id="proj_a",
        actor=CI_KEY,
        target_id="key_ci",
        details={"count": 7, "window_start": T0 - 10, "window_end": T0 + 50},
    ),
    "org_denied": audit_event(
        "request.denied",
        at_ms=(T0 + 60) * 1000,
        actor={"type": "api_key", "ip_address": "203.0.113.9"},
        outcome="denied",
        error_code="authentication",
        details={"reason": "invalid_api_key"},
    ),
}
NEWEST_FIRST = list(reversed(EVENTS))


@pytest.fixture
def audit(store: UsageStore, clickhouse: Client) -> AuditStore:
    clickhouse.command("TRUNCATE TABLE audit_log")
    return AuditStore(store)


@pytest.fixture
async def stored(audit: AuditStore) -> AuditStore:
    await audit.insert(list(EVENTS.values()))
    return audit


async def names(
    audit: AuditStore, visible: frozenset[str] | None = None, **query: Any
) -> list[str]:
    page = await audit.list_events(AuditQuery(**query), visible_projects=visible)
    by_id = {event.id: name for name, event in EVENTS.items()}
    return [by_id[event.id] for event in page.events]


def count_rows(clickhouse: Client) -> int:
    # Without FINAL: a duplicate must never have been written, not merely merged away.
    return int(clickhouse.query("SELECT count() FROM audit_log").result_rows[0][0])


async def test_the_table_is_partitioned_by_month_and_ordered_per_project(
    audit: AuditStore, clickhouse: Client
) -> None:
    engine, partition, order = clickhouse.query(
        "SELECT engine, partition_key, sorting_key FROM system.tables"
        " WHERE database = currentDatabase() AND name = 'audit_log'"
    ).result_rows[0]

    assert engine == "ReplacingMergeTree"
    assert partition == "toYYYYMM(ts)"
    assert order == "project_id, ts, id"


async def test_every_field_is_stored_and_read_back(stored: AuditStore) -> None:
    page = await stored.list_events(AuditQuery(limit=100), visible_projects=None)

    assert page.events == [EVENTS[name] for name in NEWEST_FIRST]
    assert not page.has_more
    denied = next(e for e in page.events if e.id == EVENTS["b_denied"].id)
    assert denied.ts_ms == (T0 + 30) * 1000 + 999  # milliseconds survive
    assert denied.actor.service_account_id == "svc_ci"
    assert denied.details == {"reason": "model_not_allowed"}


async def test_details_are_a_json_object_in_the_table(
    stored: AuditStore, clickhouse: Client
) -> None:
    [(details, valid)] = clickhouse.query(
        "SELECT details, isValidJSON(details) FROM audit_log WHERE type = 'api_key.used'"
    ).result_rows

    assert valid
    assert details == '{"count":7,"window_start":1767268790,"window_end":1767268850}'


async def test_the_recorder_writes_a_redelivered_event_once(
    audit: AuditStore, clickhouse: Client
) -> None:
    registry = MeteringMetrics().registry
    recorder = AuditRecorder(audit, AuditMetrics(registry))
    first, second, third = list(EVENTS.values())[:3]

    assert await recorder.record([first, second, first]) == 2  # twice in one batch
    assert await recorder.record([second, third]) == 1  # stored by an earlier batch
    assert await recorder.record([]) == 0

    assert count_rows(clickhouse) == 3
    assert registry.get_sample_value("sy_metering_audit_events_inserted_total") == 3
    assert registry.get_sample_value("sy_metering_audit_duplicates_skipped_total") == 2


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, NEWEST_FIRST),
        ({"project_ids": frozenset({"proj_b"})}, ["b_denied", "b_created"]),
        (
            {"project_ids": frozenset({"proj_a", "proj_b"})},
            ["a_used", "b_denied", "b_created", "a_key", "a_created"],
        ),
        ({"event_types": frozenset({"request.denied"})}, ["org_denied", "b_denied"]),
        (
            {"event_types": frozenset({"project.created", "user.added"})},
            ["org_user", "b_created", "a_created"],
        ),
        # actor ids: a user, a service account, or an API key
        ({"actor_ids": frozenset({"user_alice"})}, ["org_user", "a_key"]),
        ({"actor_ids": frozenset({"svc_ci"})}, ["a_used", "b_denied"]),
        ({"actor_ids": frozenset({"key_admin"})}, ["b_created", "a_created"]),
        ({"actor_emails": frozenset({"alice@example.com"})}, ["org_user", "a_key"]),
        ({"resource_ids": frozenset({"key_1", "user_bob"})}, ["org_user", "a_key"]),
        # effective_at is whole seconds: b_denied at T0+30.999 is effective at T0+30
        ({"effective_at_gt": T0 + 30}, ["org_denied", "a_used", "org_user"]),
        ({"effective_at_gte": T0 + 30}, ["org_denied", "a_used", "org_user", "b_denied"]),
        ({"effective_at_lt": T0 + 10}, ["a_created"]),
        ({"effective_at_lte": T0 + 10}, ["a_key", "a_created"]),
        ({"effective_at_gte": T0 + 10, "effective_at_lt": T0 + 30}, ["b_created", "a_key"]),
        ({"effective_at_gt": T0 + 10, "effective_at_lte": T0 + 30}, ["b_denied", "b_created"]),
        ({"effective_at_gt": T0 + 60}, []),
        (
            {"project_ids": frozenset({"proj_a"}), "event_types": frozenset({"api_key.used"})},
            ["a_used"],
        ),
        ({"project_ids": frozenset({"proj_nope"})}, []),
    ],
)
async def test_filters(stored: AuditStore, query: dict[str, Any], expected: list[str]) -> None:
    assert await names(stored, limit=100, **query) == expected


async def test_scope_none_sees_everything_a_project_scope_only_its_projects(
    stored: AuditStore,
) -> None:
    assert await names(stored, None, limit=100) == NEWEST_FIRST
    # Organisation-level events (no project) are for the unscoped reader only.
    assert await names(stored, frozenset({"proj_a"}), limit=100) == [
        "a_used",
        "a_key",
        "a_created",
    ]
    assert await names(stored, frozenset({"proj_a", "proj_b"}), limit=100) == [
        "a_used",
        "b_denied",
        "b_created",
        "a_key",
        "a_created",
    ]
    assert await names(stored, frozenset(), limit=100) == []
    assert await names(stored, frozenset({""}), limit=100) == []  # '' is not "the org"


async def test_scope_and_filters_intersect(stored: AuditStore) -> None:
    assert await names(stored, frozenset({"proj_a"}), project_ids=frozenset({"proj_b"})) == []
    assert (
        await names(stored, frozenset({"proj_a"}), event_types=frozenset({"request.denied"})) == []
    )
    assert await names(stored, frozenset({"proj_b"}), actor_ids=frozenset({"svc_ci"})) == [
        "b_denied"
    ]


async def test_after_pages_towards_older_events(stored: AuditStore) -> None:
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = await stored.list_events(AuditQuery(limit=3, after=after), visible_projects=None)
        pages += 1
        seen += [e.id for e in page.events]
        if not page.has_more:
            break
        after = page.events[-1].id

    assert pages == 3
    assert seen == [EVENTS[name].id for name in NEWEST_FIRST]


async def test_before_pages_towards_newer_events_still_newest_first(stored: AuditStore) -> None:
    oldest = EVENTS["a_created"].id
    page = await stored.list_events(AuditQuery(limit=2, before=oldest), visible_projects=None)

    assert [e.id for e in page.events] == [EVENTS["b_created"].id, EVENTS["a_key"].id]
    assert page.has_more  # newer ones remain
    top = await stored.list_events(
        AuditQuery(limit=10, before=EVENTS["a_used"].id), visible_projects=None
    )
    assert [e.id for e in top.events] == [EVENTS["org_denied"].id]
    assert not top.has_more
    newest = await stored.list_events(
        AuditQuery(before=EVENTS["org_denied"].id), visible_projects=None
    )
    assert (newest.events, newest.has_more) == ([], False)


async def test_cursors_combine_with_filters_and_scope(stored: AuditStore) -> None:
    after_a_used = await names(stored, frozenset({"proj_a"}), after=EVENTS["a_used"].id, limit=1)
    assert after_a_used == ["a_key"]
    assert await names(
        stored, event_types=frozenset({"project.created"}), after=EVENTS["org_user"].id
    ) == [
        "b_created",
        "a_created",
    ]


async def test_events_of_one_millisecond_page_by_id_without_gaps(audit: AuditStore) -> None:
    same_time = [audit_event(at_ms=T0 * 1000 + 7, target_id=f"t{i}") for i in range(7)]
    await audit.insert(same_time)

    seen: list[str] = []
    after: str | None = None
    while True:
        page = await audit.list_events(AuditQuery(limit=2, after=after), visible_projects=None)
        seen += [e.id for e in page.events]
        if not page.has_more:
            break
        after = page.events[-1].id

    assert seen == sorted((e.id for e in same_time), reverse=True)
    back = await audit.list_events(AuditQuery(limit=3, before=seen[-1]), visible_projects=None)
    assert [e.id for e in back.events] == seen[-4:-1]


@pytest.mark.parametrize("param", ["after", "before"])
async def test_a_cursor_outside_the_scope_or_unknown_is_refused(
    stored: AuditStore, param: str
) -> None:
    org_event, other_project = EVENTS["org_user"].id, EVENTS["b_created"].id
    for cursor, visible in [
        ("audit_" + "0" * 24, None),
        (org_event, frozenset({"proj_a"})),
        (other_project, frozenset({"proj_a"})),
    ]:
        query = AuditQuery(after=cursor) if param == "after" else AuditQuery(before=cursor)
        with pytest.raises(CursorNotFoundError) as refused:
            await stored.list_events(query, visible_projects=visible)
        assert refused.value.param == param


def test_the_query_holds_its_own_bounds() -> None:
    for limit in (0, 101):
        with pytest.raises(ValueError, match="limit"):
            AuditQuery(limit=limit)
    with pytest.raises(ValueError, match="not both"):
        AuditQuery(after="audit_" + "0" * 24, before="audit_" + "1" * 24)
