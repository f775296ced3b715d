"""Roles and keys: whom each kind of key speaks for and what its roles let it do."""

from __future__ import annotations

from contracts.governance import (
    AdminKeyRecord,
    ApiKeyRecord,
    GovernanceRecord,
    ProjectRecord,
    ProjectUserRecord,
    ServiceAccountRecord,
    UserRecord,
    record_key,
)
from services.common.access import ADMIN, KeyKind, KeyRing, Permission
from services.common.governance import GovernanceView, key_sha256

BOOTSTRAP = "bootstrap-admin-key-of-the-tests"
P = Permission


def _key(key_id: str, value: str, **owner: str) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=key_id,
        project_id=owner.pop("project_id", "proj_a"),
        name=key_id,
        redacted_value="sk-...",
        sha256=key_sha256(value),
        created_at=1,
        **owner,
    )


def ring() -> KeyRing:
    view = GovernanceView()
    records: list[GovernanceRecord] = [
        ProjectRecord(id="proj_a", name="a", created_at=1),
        ProjectRecord(id="proj_b", name="b", created_at=1),
        ServiceAccountRecord(id="svc_m", project_id="proj_a", name="m", created_at=1),
        ServiceAccountRecord(id="svc_o", project_id="proj_a", name="o", role="owner", created_at=1),
        UserRecord(id="user_ana", email="ana@example.com", roles=["analyst"], created_at=1),
        UserRecord(id="user_bo", email="bo@example.com", roles=["reader"], created_at=1),
        ProjectUserRecord(
            id="proj_b:user_bo", project_id="proj_b", user_id="user_bo", role="auditor", added_at=1
        ),
        ProjectUserRecord(
            id="proj_a:user_bo", project_id="proj_a", user_id="user_bo", role="member", added_at=1
        ),
        _key("key_m", "member-key", service_account_id="svc_m"),
        _key("key_o", "owner-key", service_account_id="svc_o"),
        _key("key_bo", "bo-key", user_id="user_bo"),
        AdminKeyRecord(
            id="key_ana",
            name="ana",
            redacted_value="sk-...",
            sha256=key_sha256("ana-admin-key"),
            created_at=1,
            user_id="user_ana",
        ),
        AdminKeyRecord(
            id="key_bo_admin",
            name="bo",
            redacted_value="sk-...",
            sha256=key_sha256("bo-admin-key"),
            created_at=1,
            user_id="user_bo",
        ),
    ]
    for record in records:
        view.apply(record_key(record.kind, record.id), record.to_bytes())
    return KeyRing(BOOTSTRAP, view)


def test_the_bootstrap_key_is_the_organisations_owner() -> None:
    owner = ring().authenticate(BOOTSTRAP)
    assert owner is not None
    assert owner.is_admin
    assert owner.tenant == ADMIN
    assert all(owner.can(p, "proj_a") for p in Permission)
    assert owner.projects_with(P.USAGE_READ) is None  # every project


def test_a_member_service_account_calls_models_in_its_project_only() -> None:
    member = ring().authenticate("member-key")
    assert member is not None
    assert member.kind is KeyKind.SERVICE_ACCOUNT
    assert member.tenant == "proj_a"
    assert member.can(P.MODEL_REQUEST, "proj_a")
    assert not member.can(P.MODEL_REQUEST, "proj_b")
    assert not member.can(P.PROJECT_WRITE, "proj_a")
    assert not member.can(P.USAGE_READ, "proj_a")
    assert not member.is_admin


def test_an_owner_service_account_manages_its_project_and_no_other() -> None:
    owner = ring().authenticate("owner-key")
    assert owner is not None
    assert owner.can(P.PROJECT_WRITE, "proj_a")
    assert owner.can(P.AUDIT_READ, "proj_a")
    assert not owner.can(P.PROJECT_WRITE, "proj_b")
    assert not owner.can(P.ORG_WRITE)
    assert not owner.can(P.CREDIT_WRITE, "proj_a")
    assert owner.projects_with(P.USAGE_READ) == frozenset({"proj_a"})


def test_a_persons_project_key_acts_with_their_role_there_only() -> None:
    bo = ring().authenticate("bo-key")
    assert bo is not None
    assert bo.kind is KeyKind.USER
    assert bo.user_id == "user_bo"
    assert bo.can(P.MODEL_REQUEST, "proj_a")
    # Bo audits proj_b, but this key is bound to proj_a.
    assert not bo.can(P.AUDIT_READ, "proj_b")


def test_a_persons_admin_key_acts_with_their_organisation_and_project_roles() -> None:
    keys = ring()
    ana = keys.authenticate("ana-admin-key")
    assert ana is not None
    assert ana.kind is KeyKind.ADMIN_KEY
    assert ana.tenant == ADMIN
    assert ana.can(P.USAGE_READ, "proj_a")
    assert ana.can(P.USAGE_READ, "proj_b")
    assert ana.projects_with(P.USAGE_READ) is None
    assert not ana.can(P.AUDIT_READ, "proj_a")
    assert not ana.can(P.PROJECT_WRITE, "proj_a")
    bo = keys.authenticate("bo-admin-key")
    assert bo is not None
    assert bo.projects_with(P.AUDIT_READ) == frozenset({"proj_b"})
    assert bo.can(P.PROJECT_READ, "proj_a")
    assert not bo.can(P.PROJECT_WRITE, "proj_a")


def test_leaving_a_project_or_the_organisation_stops_that_persons_keys() -> None:
    keys = ring()
    keys.governance.apply(record_key("project_user", "proj_a:user_bo"), None)
    assert keys.authenticate("bo-key") is None
    assert keys.authenticate("bo-admin-key") is not None  # still in the organisation
    keys.governance.apply(record_key("user", "user_bo"), None)
    assert keys.authenticate("bo-admin-key") is None


def test_unknown_and_missing_keys_are_nobody() -> None:
    keys = ring()
    assert keys.authenticate(None) is None
    assert keys.authenticate("not-a-key") is None
