"""People, roles and the keys they hold (issue 7): each role's permissions are checked on every
Admin API route, and a person's key acts with their role where it is bound."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.governance.governance_support import (
    ORG,
    assert_shape,
    bearer,
    chat_with,
    new_key,
    new_project,
    new_user,
    ok,
)

pytestmark = pytest.mark.e2e


def test_roles_are_listed_in_openais_shape(admin: httpx.Client) -> None:
    roles = ok(admin.get(f"{ORG}/roles"))
    assert_shape("PublicRoleListResource", roles)
    names = {(r["resource_type"], r["name"]) for r in roles["data"]}
    assert {
        ("api.organization", "owner"),
        ("api.organization", "analyst"),
        ("api.organization", "auditor"),
        ("api.project", "owner"),
        ("api.project", "member"),
    } <= names


def test_a_person_added_to_a_project_gets_a_key_with_their_role(admin: httpx.Client) -> None:
    project = new_project(admin)
    user = new_user(admin, "dev")
    added = ok(
        admin.post(
            f"{ORG}/projects/{project['id']}/users", json={"user_id": user["id"], "role": "member"}
        )
    )
    assert_shape("ProjectUser", added)
    listed = ok(admin.get(f"{ORG}/projects/{project['id']}/users"))
    assert_shape("ProjectUserListResponse", listed)
    assert [u["id"] for u in listed["data"]] == [user["id"]]

    created = ok(
        admin.post(f"{ORG}/projects/{project['id']}/api_keys", json={"user_id": user["id"]})
    )
    key = created["value"]
    assert chat_with(admin, key).status_code == 200
    # A member calls models but does not manage the project.
    managing = admin.post(
        f"{ORG}/projects/{project['id']}/service_accounts", json={"name": "x"}, headers=bearer(key)
    )
    assert managing.status_code == 403
    [shown] = ok(admin.get(f"{ORG}/projects/{project['id']}/api_keys"))["data"]
    assert shown["owner"]["type"] == "user"
    assert shown["owner"]["user"]["id"] == user["id"]

    # Leaving the project ends the person's keys there.
    ok(admin.delete(f"{ORG}/projects/{project['id']}/users/{user['id']}"))
    assert chat_with(admin, key).status_code == 401


def test_an_owner_service_account_manages_its_own_project_only(admin: httpx.Client) -> None:
    mine, theirs = new_project(admin, "mine"), new_project(admin, "theirs")
    owner = new_key(admin, mine["id"], role="owner")
    made = admin.post(
        f"{ORG}/projects/{mine['id']}/service_accounts", json={"name": "bot"}, headers=bearer(owner)
    )
    assert made.status_code == 200, made.text
    assert chat_with(admin, made.json()["api_key"]["value"]).status_code == 200
    for method, path in (
        ("GET", f"{ORG}/projects/{theirs['id']}/api_keys"),
        ("POST", f"{ORG}/projects/{theirs['id']}/service_accounts"),
        ("GET", f"{ORG}/projects/{theirs['id']}/rate_limits"),
        ("POST", f"{ORG}/projects/{mine['id']}/credit/grants"),  # only the organisation tops up
        # A project's limits and policies are the organisation's to set, not its owner's.
        ("POST", f"{ORG}/projects/{mine['id']}/spend_limit"),
        ("DELETE", f"{ORG}/projects/{mine['id']}/spend_limit"),
        ("POST", f"{ORG}/projects/{mine['id']}/model_permissions"),
        ("POST", f"{ORG}/projects/{mine['id']}/rate_limits/rl-openai__gpt-4o-mini"),
        ("POST", f"{ORG}/projects/{mine['id']}/data_retention"),
        ("POST", f"{ORG}/projects"),
        ("GET", f"{ORG}/users"),
        ("GET", f"{ORG}/admin_api_keys"),
    ):
        refused = admin.request(
            method, path, json={"name": "x", "amount": "1"}, headers=bearer(owner)
        )
        assert refused.status_code == 403, (method, path, refused.text)
        assert refused.json()["error"]["type"] == "permission_error"


def test_admin_keys_act_with_their_persons_roles(admin: httpx.Client) -> None:
    project = new_project(admin)
    analyst = new_user(admin, "analyst", role="analyst")
    auditor = new_user(admin, "auditor", role="auditor")
    keys = {}
    for user in (analyst, auditor):
        created = ok(
            admin.post(f"{ORG}/admin_api_keys", json={"name": user["email"], "user_id": user["id"]})
        )
        assert_shape("AdminApiKeyCreateResponse", created)
        assert created["value"].startswith("sk-sy-admin-")
        keys[user["id"]] = created["value"]
    listed = ok(admin.get(f"{ORG}/admin_api_keys"))
    assert_shape("ApiKeyList", listed)
    assert all(keys[u] not in str(listed) for u in keys)

    as_analyst, as_auditor = bearer(keys[analyst["id"]]), bearer(keys[auditor["id"]])
    # The analyst reads credit, not the audit log; the auditor the other way round.
    assert (
        admin.get(f"{ORG}/projects/{project['id']}/credit", headers=as_analyst).status_code == 200
    )
    assert admin.get(f"{ORG}/audit_logs", headers=as_analyst).status_code == 403
    assert admin.get(f"{ORG}/audit_logs", headers=as_auditor).status_code == 200
    assert (
        admin.get(f"{ORG}/projects/{project['id']}/credit", headers=as_auditor).status_code == 403
    )
    # Neither manages anything, and admin keys call no model.
    assert admin.post(f"{ORG}/projects", json={"name": "x"}, headers=as_analyst).status_code == 403
    assert chat_with(admin, keys[analyst["id"]]).status_code == 403

    # A new organisation role takes effect on the next call.
    owner_role = ok(
        admin.post(f"{ORG}/users/{analyst['id']}/roles", json={"role_id": "role_org_owner"})
    )
    assert_shape("UserRoleAssignment", owner_role)
    assert (
        admin.post(f"{ORG}/projects", json={"name": "by analyst"}, headers=as_analyst).status_code
        == 200
    )
    assert_shape("RoleListResource", ok(admin.get(f"{ORG}/users/{analyst['id']}/roles")))

    # Removing the person removes their keys.
    deleted = ok(admin.delete(f"{ORG}/users/{auditor['id']}"))
    assert_shape("UserDeleteResponse", deleted)
    assert admin.get(f"{ORG}/audit_logs", headers=as_auditor).status_code == 401


def test_a_key_with_an_expiry_stops_at_it(admin: httpx.Client) -> None:
    project = new_project(admin)
    account = ok(
        admin.post(
            f"{ORG}/projects/{project['id']}/service_accounts",
            json={"name": "short-lived", "expires_in_seconds": 2},
        )
    )
    key = account["api_key"]["value"]
    assert account["api_key"]["expires_at"] is not None
    assert chat_with(admin, key).status_code == 200
    time.sleep(2.5)
    assert chat_with(admin, key).status_code == 401
    bad = admin.post(
        f"{ORG}/projects/{project['id']}/service_accounts",
        json={"name": "x", "expires_in_seconds": 0},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "expires_in_seconds"
