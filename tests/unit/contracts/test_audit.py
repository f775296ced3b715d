from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.audit import (
    AUDIT_ID,
    MAX_DETAIL_CHARS,
    MAX_DETAILS,
    SWITCHYARD_EVENT_TYPES,
    AuditActor,
    AuditEvent,
    AuditEventType,
    new_audit_id,
)

ADMIN = {"type": "api_key", "api_key_id": "key_admin", "api_key_type": "admin"}


def event(**overrides: Any) -> AuditEvent:
    fields: dict[str, Any] = {"type": "project.created", "actor": ADMIN, "ts_ms": 1_767_268_800_123}
    fields.update(overrides)
    return AuditEvent.model_validate(fields)


def test_ids_are_audit_and_24_hex_digits_and_unique() -> None:
    ids = {new_audit_id() for _ in range(1000)}

    assert len(ids) == 1000
    assert all(AUDIT_ID.match(i) for i in ids)
    assert AUDIT_ID.match(event().id)
    with pytest.raises(ValidationError):
        event(id="audit_123")


def test_effective_at_is_ts_in_whole_seconds_either_way() -> None:
    assert event().effective_at == 1_767_268_800
    from_seconds = event(ts_ms=None, effective_at=1_767_268_800)
    assert from_seconds.ts_ms == 1_767_268_800_000
    with pytest.raises(ValidationError, match="whole seconds"):
        event(effective_at=1_767_268_801)
    now = AuditEvent(type="project.created", actor=AuditActor.system())
    assert now.ts_ms > 1_767_268_800_000
    assert now.effective_at == now.ts_ms // 1000


def test_round_trips_through_the_wire() -> None:
    original = event(
        project_id="proj_a",
        project_name="Search",
        actor={**ADMIN, "ip_address": "10.0.0.1", "user_agent": "curl/8"},
        target_id="proj_a",
        details={"name": "Search", "archived": False, "limit": 3, "ratio": 0.5, "none": None},
    )

    assert AuditEvent.model_validate_json(original.to_bytes()) == original


def test_details_keep_their_scalar_types() -> None:
    details = event(details={"flag": True, "count": 1, "share": 1.5, "name": "x"}).details

    assert details == {"flag": True, "count": 1, "share": 1.5, "name": "x"}
    assert type(details["flag"]) is bool
    assert type(details["count"]) is int


def test_detail_strings_are_cut_to_the_bound() -> None:
    cut = event(details={"note": "x" * (MAX_DETAIL_CHARS * 3)})

    assert cut.details["note"] == "x" * MAX_DETAIL_CHARS
    long_agent = AuditActor(type="session", user_id="u", user_agent="a" * 5000)
    assert long_agent.user_agent == "a" * MAX_DETAIL_CHARS


def test_names_and_addresses_are_cut_or_dropped_never_refused() -> None:
    """An odd project name or header must not stop an action from being audited."""
    odd = event(
        project_id="proj_a",
        project_name="p" * 2000,
        actor={**ADMIN, "user_email": "", "ip_address": "x" * 600, "user_agent": ""},
    )

    assert odd.project_name == "p" * MAX_DETAIL_CHARS
    assert odd.actor.ip_address == "x" * MAX_DETAIL_CHARS
    assert (odd.actor.user_email, odd.actor.user_agent) == (None, None)
    assert event(project_name="").project_name is None
    assert event(target_id="m" * 5000).target_id == "m" * MAX_DETAIL_CHARS
    assert event(target_id="").target_id is None


def test_at_most_32_details() -> None:
    assert len(event(details={f"k{i}": i for i in range(MAX_DETAILS)}).details) == MAX_DETAILS
    with pytest.raises(ValidationError, match="at most 32 details"):
        event(details={f"k{i}": i for i in range(MAX_DETAILS + 1)})


@pytest.mark.parametrize(
    "details",
    [
        {"nested": {"a": 1}},  # scalars only
        {"items": [1, 2]},
        {"share": float("nan")},  # JSON has no NaN
        {"share": float("inf")},
        {"id": "x"},  # the target's field in the served object
        {"Not Snake": 1},
        {"": 1},
        {"k" * 65: 1},
    ],
)
def test_details_refuse_what_is_not_a_short_named_scalar(details: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        event(details=details)


def test_an_error_never_quotes_the_offending_detail() -> None:
    secret_key = "the prompt was: tell me a secret"
    with pytest.raises(ValidationError) as refused:
        event(details={secret_key: 1})

    assert "secret" not in str(refused.value)


def test_extra_fields_are_not_carried() -> None:
    """A producer cannot smuggle a prompt in through a field the contract does not have."""
    wire = json.loads(event().to_bytes())
    wire["prompt"] = "tell me a secret"
    wire["actor"]["messages"] = ["tell me a secret"]

    parsed = AuditEvent.model_validate(wire)

    assert "secret" not in parsed.to_bytes().decode()
    assert "prompt" not in AuditEvent.model_fields
    assert set(AuditEvent.model_fields) == {
        "schema_version",
        "id",
        "type",
        "effective_at",
        "ts_ms",
        "project_id",
        "project_name",
        "actor",
        "target_id",
        "outcome",
        "error_code",
        "details",
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"type": "created"},  # no resource
        {"type": "Project.Created"},
        {"outcome": "maybe"},
        {"actor": {"type": "robot"}},
        {"actor": {**ADMIN, "api_key_type": "root"}},
        {"project_id": ""},  # absence is None, never ''
        {"schema_version": 2},
    ],
)
def test_refuses_malformed_fields(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        event(**overrides)


def test_every_documented_type_is_a_valid_type() -> None:
    for event_type in AuditEventType:
        assert event(type=event_type).type == event_type.value
    assert SWITCHYARD_EVENT_TYPES.issubset(t.value for t in AuditEventType)
    assert "request.denied" in SWITCHYARD_EVENT_TYPES
    assert "project.created" not in SWITCHYARD_EVENT_TYPES


def test_a_type_not_listed_yet_is_still_accepted() -> None:
    """A newer producer's type must not be refused by an older consumer."""
    assert event(type="certificate.created").type == "certificate.created"
