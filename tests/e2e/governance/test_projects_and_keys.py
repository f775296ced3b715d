"""OpenAI's Admin API for projects, service accounts and project keys (issue 7, first part),
with plain HTTP against the real stack, each answer checked against the spec's schema.

A project key works for chat as soon as its service account is created, and stops working on
deletion or when its project is archived; keys live on the compacted governance topic, so
neither a restarted ingress nor a wiped Redis loses one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from services.stack import RunningStack
from tests.e2e.e2e_support import Metering
from tests.e2e.faults.fault_support import kill, restart, restored
from tests.e2e.governance.governance_support import (
    assert_shape,
    chat_with,
    new_account,
    new_project,
)

pytestmark = pytest.mark.e2e


def test_a_project_key_is_shown_once_and_authenticates_as_its_project(
    admin: httpx.Client, metering: Metering
) -> None:
    project = new_project(admin, "search team")
    assert project["status"] == "active"
    account = new_account(admin, project["id"])
    key = account["api_key"]["value"]
    assert key.startswith("sk-sy-proj-")

    listed = admin.get(f"/v1/organization/projects/{project['id']}/api_keys")
    assert listed.status_code == 200
    assert_shape("ProjectApiKeyListResponse", listed.json())
    [shown] = listed.json()["data"]
    assert shown["id"] == account["api_key"]["id"]
    assert key not in listed.text  # only the redacted form, ever again
    assert shown["redacted_value"].endswith(key[-4:])
    assert shown["owner"]["service_account"]["id"] == account["id"]

    answered = chat_with(admin, key)
    assert answered.status_code == 200, answered.text
    # The metering API answers the admin; the usage row names the project and the key.
    request_id = answered.headers["x-request-id"]
    rows = metering.wait_rows(request_id)
    assert rows[0]["tenant"] == project["id"]
    assert rows[0]["key_id"] == account["api_key"]["id"]


def test_a_deleted_key_or_an_archived_project_stops_working_at_once(admin: httpx.Client) -> None:
    project = new_project(admin)
    first = new_account(admin, project["id"], "first")
    second = new_account(admin, project["id"], "second")
    assert chat_with(admin, first["api_key"]["value"]).status_code == 200

    deleted = admin.delete(
        f"/v1/organization/projects/{project['id']}/api_keys/{first['api_key']['id']}"
    )
    assert deleted.status_code == 200
    assert_shape("ProjectApiKeyDeleteResponse", deleted.json())
    refused = chat_with(admin, first["api_key"]["value"])
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"

    assert chat_with(admin, second["api_key"]["value"]).status_code == 200
    archived = admin.post(f"/v1/organization/projects/{project['id']}/archive")
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived"
    assert archived.json()["archived_at"] is not None
    assert chat_with(admin, second["api_key"]["value"]).status_code == 401

    listed = admin.get("/v1/organization/projects", params={"limit": 100}).json()
    assert project["id"] not in {p["id"] for p in listed["data"]}
    with_archived = admin.get(
        "/v1/organization/projects", params={"limit": 100, "include_archived": "true"}
    ).json()
    assert project["id"] in {p["id"] for p in with_archived["data"]}


def test_lists_page_like_openais(admin: httpx.Client) -> None:
    project = new_project(admin)
    accounts = [new_account(admin, project["id"], f"svc {i}")["id"] for i in range(3)]
    path = f"/v1/organization/projects/{project['id']}/service_accounts"
    first = admin.get(path, params={"limit": 2}).json()
    assert_shape("ProjectServiceAccountListResponse", first)
    assert [a["id"] for a in first["data"]] == accounts[:2]
    assert first["has_more"] is True
    rest = admin.get(path, params={"limit": 2, "after": first["last_id"]}).json()
    assert [a["id"] for a in rest["data"]] == accounts[2:]
    assert rest["has_more"] is False
    assert admin.get(path, params={"limit": 0}).status_code == 400


def test_members_see_only_their_project_and_mistakes_are_clean_errors(
    admin: httpx.Client,
) -> None:
    project = new_project(admin)
    new_project(admin, "another team")
    key = new_account(admin, project["id"])["api_key"]["value"]
    as_member = admin.get("/v1/organization/projects", headers={"authorization": f"Bearer {key}"})
    assert as_member.status_code == 200
    assert [p["id"] for p in as_member.json()["data"]] == [project["id"]]
    creating = admin.post(
        "/v1/organization/projects", json={"name": "x"}, headers={"authorization": f"Bearer {key}"}
    )
    assert creating.status_code == 403
    assert creating.json()["error"]["type"] == "permission_error"
    missing = admin.get("/v1/organization/projects/proj_nope")
    assert missing.status_code == 404
    assert set(missing.json()) == {"error"}
    assert admin.post("/v1/organization/projects", json={"name": ""}).status_code == 400
    assert admin.post("/v1/organization/projects", content=b"{not json").status_code == 400
    renamed = admin.post(f"/v1/organization/projects/{project['id']}", json={"name": "renamed"})
    assert renamed.json()["name"] == "renamed"
    assert admin.get(f"/v1/organization/projects/{project['id']}").json()["name"] == "renamed"


async def test_keys_survive_an_ingress_restart_and_a_wiped_redis(
    admin: httpx.Client, full_stack: RunningStack
) -> None:
    project = new_project(admin)
    key = new_account(admin, project["id"])["api_key"]["value"]
    with restored(full_stack):
        await kill(full_stack, "redis")  # it keeps nothing on disk: a restart is a wipe
        await restart(full_stack, "redis")
        await kill(full_stack, "ingress")
        await restart(full_stack, "ingress")
        # The restarted ingress replayed the governance topic before it took a request.
        for _ in range(20):
            answered = await asyncio.to_thread(chat_with, admin, key)
            if answered.status_code != 503:  # Redis reconnecting
                break
            await asyncio.sleep(0.5)
        assert answered.status_code == 200, answered.text


def test_model_permissions_hold_for_named_models_fallback_lists_and_auto(
    admin: httpx.Client,
) -> None:
    project = new_project(admin)
    key = new_account(admin, project["id"])["api_key"]["value"]
    path = f"/v1/organization/projects/{project['id']}/model_permissions"
    unset = admin.get(path)
    assert unset.status_code == 200
    assert_shape("ProjectModelPermissions", unset.json())
    assert unset.json()["mode"] == "deny_list"
    assert unset.json()["model_ids"] == []

    # Aliases and bare ids are stored as the canonical id they name.
    allowed = admin.post(path, json={"mode": "allow_list", "model_ids": ["claude-haiku-4-5"]})
    assert allowed.status_code == 200, allowed.text
    assert_shape("ProjectModelPermissions", allowed.json())
    assert allowed.json()["model_ids"] == ["anthropic/claude-haiku-4-5"]

    def chat(**body: Any) -> httpx.Response:
        return admin.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"messages": [{"role": "user", "content": "hello"}], **body},
        )

    denied = chat(model="gpt-4o-mini")
    assert denied.status_code == 403
    assert denied.json()["error"]["type"] == "permission_error"
    assert chat(model="anthropic/claude-haiku-4-5").status_code == 200
    # A fallback list skips what the project may not use.
    listed = chat(models=["gpt-4o-mini", "claude-haiku-4-5"])
    assert listed.status_code == 403  # refused at the door: gpt-4o-mini is named outright
    # Automatic choice picks only among the allowed.
    chosen = chat(model="auto:cheap")
    assert chosen.status_code == 200, chosen.text
    assert chosen.headers["x-switchyard-model"] == "anthropic/claude-haiku-4-5"

    assert admin.post(path, json={"mode": "allow_list", "model_ids": ["nope"]}).status_code == 404
    assert admin.post(path, json={"mode": "sometimes", "model_ids": []}).status_code == 400
    removed = admin.delete(path)
    assert removed.status_code == 200
    assert_shape("ProjectModelPermissionsDeleteResponse", removed.json())
    assert chat(model="gpt-4o-mini").status_code == 200
