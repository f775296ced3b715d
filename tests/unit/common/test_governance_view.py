"""The in-memory governance view: records and tombstones applied in topic order, and which
key values authenticate."""

from __future__ import annotations

from decimal import Decimal

import pytest

from contracts.governance import (
    ApiKeyRecord,
    CreditGrantRecord,
    ProjectRecord,
    RateLimitRecord,
    ServiceAccountRecord,
    record_key,
)
from services.common.governance import GovernanceView, key_sha256

VALUE = "sk-sy-proj-test-value"


def seeded(*, expires_at: int | None = None) -> GovernanceView:
    view = GovernanceView()
    records: list[ProjectRecord | ServiceAccountRecord | ApiKeyRecord] = [
        ProjectRecord(id="proj_1", name="team", created_at=1),
        ServiceAccountRecord(id="svc_1", project_id="proj_1", name="ci", created_at=1),
        ApiKeyRecord(
            id="key_1",
            project_id="proj_1",
            service_account_id="svc_1",
            name="ci key",
            redacted_value="sk-sy-proj-...alue",
            sha256=key_sha256(VALUE),
            created_at=1,
            expires_at=expires_at,
        ),
    ]
    for record in records:
        view.apply(record_key(record.kind, record.id), record.to_bytes())
    return view


def test_a_live_key_authenticates_and_others_do_not() -> None:
    view = seeded()
    found = view.key_for(VALUE)
    assert isinstance(found, ApiKeyRecord)
    assert found.project_id == "proj_1"
    assert view.key_for(VALUE + "x") is None


def test_a_tombstone_revokes_the_key() -> None:
    view = seeded()
    view.apply(record_key("api_key", "key_1"), None)
    assert view.key_for(VALUE) is None
    assert "key_1" not in view.api_keys


def test_an_archived_project_or_a_deleted_account_disables_its_keys() -> None:
    archived = seeded()
    project = ProjectRecord(id="proj_1", name="team", created_at=1, archived_at=2)
    archived.apply(record_key("project", "proj_1"), project.to_bytes())
    assert archived.key_for(VALUE) is None

    orphaned = seeded()
    orphaned.apply(record_key("service_account", "svc_1"), None)
    assert orphaned.key_for(VALUE) is None


def test_an_expired_key_does_not_authenticate() -> None:
    view = seeded(expires_at=100)
    assert view.key_for(VALUE, now_s=99) is not None
    assert view.key_for(VALUE, now_s=100) is None


def test_a_rewritten_key_record_replaces_its_digest() -> None:
    view = seeded()
    rotated = view.api_keys["key_1"].model_copy(update={"sha256": key_sha256("new-value")})
    view.apply(record_key("api_key", "key_1"), rotated.to_bytes())
    assert view.key_for(VALUE) is None
    assert view.key_for("new-value") is not None


def test_grants_sum_per_project_and_a_tombstone_takes_one_back() -> None:
    view = seeded()
    assert view.granted_usd("proj_1") is None  # never granted: not prepaid
    for grant_id, amount in (("g1", "10.25"), ("g2", "0.000001")):
        grant = CreditGrantRecord(
            id=grant_id,
            project_id="proj_1",
            amount_usd=Decimal(amount),
            created_at=1,
            granted_by="admin",
        )
        view.apply(record_key("credit_grant", grant_id), grant.to_bytes())
    assert view.granted_usd("proj_1") == Decimal("10.250001")
    view.apply(record_key("credit_grant", "g1"), None)
    assert view.granted_usd("proj_1") == Decimal("0.000001")


def test_rate_limits_are_found_by_project_and_model() -> None:
    view = seeded()
    limit = RateLimitRecord(
        id="proj_1:openai/gpt-4o-mini",
        project_id="proj_1",
        model="openai/gpt-4o-mini",
        max_requests_per_1_minute=5,
    )
    view.apply(record_key("rate_limit", limit.id), limit.to_bytes())
    assert view.rate_limit("proj_1", "openai/gpt-4o-mini") == limit
    assert view.rate_limit("proj_2", "openai/gpt-4o-mini") is None
    view.apply(record_key("rate_limit", limit.id), None)
    assert view.rate_limit("proj_1", "openai/gpt-4o-mini") is None


def test_an_unknown_kind_is_refused_rather_than_misfiled() -> None:
    with pytest.raises(ValueError, match="unknown governance record kind"):
        GovernanceView().apply(b"wormhole:1", b"{}")
