"""The audit trail and tenant isolation (issue 7): every admin action and every refused request
lands in the audit log, with no prompt in it; no key reads another project's usage, audit
entries, keys or credit; a revoked key stops on every ingress replica within a second."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from services.stack import RunningStack
from services.stack._layout import REPO_ROOT
from tests.e2e.e2e_support import Metering, unique
from tests.e2e.governance.governance_support import (
    ORG,
    assert_shape,
    bearer,
    chat_with,
    grant,
    new_account,
    new_key,
    new_project,
    ok,
)

pytestmark = pytest.mark.e2e

_AUDIT_WAIT_S = 30.0


def audit_entries(
    http: httpx.Client,
    *,
    until: Callable[[list[dict[str, Any]]], bool],
    key: str | None = None,
    **filters: Any,
) -> list[dict[str, Any]]:
    """The audit log's entries matching ``filters``, once ``until`` holds of them (metering
    writes them a moment after the action) or the wait is over."""
    headers = bearer(key) if key else {}
    deadline = time.monotonic() + _AUDIT_WAIT_S
    while True:
        page = ok(http.get(f"{ORG}/audit_logs", params={"limit": 100, **filters}, headers=headers))
        entries: list[dict[str, Any]] = page["data"]
        if until(entries) or time.monotonic() > deadline:
            return entries
        time.sleep(0.3)


def _types(entries: list[dict[str, Any]]) -> set[str]:
    return {e["type"] for e in entries}


def test_admin_actions_and_refused_requests_are_audited_without_prompts(
    admin: httpx.Client,
) -> None:
    project = new_project(admin, "audited")
    key = new_key(admin, project["id"])
    ok(
        admin.post(
            f"{ORG}/projects/{project['id']}/model_permissions",
            json={"mode": "deny_list", "model_ids": ["gpt-4o"]},
        )
    )
    ok(
        admin.post(
            f"{ORG}/projects/{project['id']}/rate_limits/rl-openai__gpt-4o-mini",
            json={"max_requests_per_1_minute": 1},
        )
    )
    grant(admin, project["id"], "0.000001")  # a micro-dollar: no request fits
    secret_prompt = unique("do not keep this prompt")
    refusals = {
        chat_with(admin, key, secret_prompt, model="gpt-4o").status_code,  # forbidden model
        chat_with(admin, key, secret_prompt).status_code,  # no credit
        chat_with(admin, "sk-sy-proj-not-a-key", secret_prompt).status_code,  # bad key
    }
    assert refusals == {403, 402, 401}

    wanted = {
        "project.created",
        "service_account.created",
        "model_permissions.updated",
        "rate_limit.updated",
        "credit.granted",
        "request.denied",
    }
    entries = audit_entries(
        admin,
        until=lambda found: (
            wanted <= _types(found)
            and len([e for e in found if e["type"] == "request.denied"]) >= 2
        ),
        **{"project_ids[]": project["id"]},
    )
    assert wanted <= _types(entries)
    assert all(e["project"]["id"] == project["id"] for e in entries)
    denied = [e for e in entries if e["type"] == "request.denied"]
    reasons = {e["request.denied"]["reason"] for e in denied}
    assert {"model_not_allowed", "insufficient_credit"} <= reasons
    assert all(e["outcome"] == "denied" for e in denied)
    for entry in entries:
        assert_shape("AuditLogActor", entry["actor"])
    assert secret_prompt not in str(entries)

    # The bad key: an organisation-level entry, filtered by type.
    bad_keys = audit_entries(
        admin,
        until=lambda found: any(e["request.denied"]["reason"] == "invalid_api_key" for e in found),
        **{"event_types[]": "request.denied"},
    )
    assert any(e["request.denied"]["reason"] == "invalid_api_key" for e in bad_keys)
    assert secret_prompt not in str(bad_keys)


def test_each_keys_use_is_summed_into_the_audit_log(admin: httpx.Client) -> None:
    project = new_project(admin)
    account = new_account(admin, project["id"])
    for _ in range(3):
        assert chat_with(admin, account["api_key"]["value"], unique("use")).status_code == 200
    used = audit_entries(
        admin,
        until=lambda found: sum(e["api_key.used"]["count"] for e in found) >= 3,
        **{"project_ids[]": project["id"], "event_types[]": "api_key.used"},
    )
    assert sum(e["api_key.used"]["count"] for e in used) >= 3
    assert {e["api_key.used"]["id"] for e in used} == {account["api_key"]["id"]}


def test_no_key_reads_another_projects_data(
    admin: httpx.Client, full_stack: RunningStack, metering: Metering
) -> None:
    mine, theirs = new_project(admin, "mine"), new_project(admin, "theirs")
    my_owner = new_key(admin, mine["id"], role="owner")
    my_member = new_key(admin, mine["id"])
    their_key = new_key(admin, theirs["id"])
    mine_answer = chat_with(admin, my_member, unique("mine"))
    theirs_answer = chat_with(admin, their_key, unique("theirs"))
    assert mine_answer.status_code == theirs_answer.status_code == 200
    metering.wait_rows(theirs_answer.headers["x-request-id"])
    metering.wait_rows(mine_answer.headers["x-request-id"])

    usage = httpx.Client(base_url=metering.base_url, trust_env=False, timeout=10.0)
    with usage:
        # Usage: their request is invisible to my owner key; mine is not.
        def events(key: str, request_id: str) -> httpx.Response:
            return usage.get(
                "/v1/usage/events", params={"request_id": request_id}, headers=bearer(key)
            )

        assert ok(events(my_owner, theirs_answer.headers["x-request-id"]))["rows"] == []
        assert len(ok(events(my_owner, mine_answer.headers["x-request-id"]))["rows"]) == 1
        summary = ok(usage.get("/v1/usage/summary", params={"by": "key"}, headers=bearer(my_owner)))
        # Only my project's keys appear: the two of mine that made requests, and no other.
        assert {row["group"] for row in summary["rows"]} <= set(_key_ids(admin, mine["id"]))
        assert summary["rows"]
        # A member calls models but reads no usage; no key at all reads nothing.
        assert events(my_member, mine_answer.headers["x-request-id"]).status_code == 403
        assert usage.get("/v1/usage/summary").status_code == 401

    # Audit: my owner key sees my project's entries only, whatever it asks for.
    mine_entries = audit_entries(admin, key=my_owner, until=lambda found: bool(found))
    assert mine_entries
    assert {e["project"]["id"] for e in mine_entries} == {mine["id"]}
    asked_for_theirs = ok(
        admin.get(
            f"{ORG}/audit_logs",
            params={"project_ids[]": theirs["id"]},
            headers=bearer(my_owner),
        )
    )
    assert asked_for_theirs["data"] == []
    assert admin.get(f"{ORG}/audit_logs", headers=bearer(my_member)).status_code == 403

    # Keys, credit, limits, members and settings of their project: refused.
    for path in (
        f"/projects/{theirs['id']}",
        f"/projects/{theirs['id']}/api_keys",
        f"/projects/{theirs['id']}/service_accounts",
        f"/projects/{theirs['id']}/users",
        f"/projects/{theirs['id']}/credit",
        f"/projects/{theirs['id']}/rate_limits",
        f"/projects/{theirs['id']}/spend_limit",
        f"/projects/{theirs['id']}/spend_alerts",
        f"/projects/{theirs['id']}/model_permissions",
        f"/projects/{theirs['id']}/data_retention",
    ):
        refused = admin.get(ORG + path, headers=bearer(my_owner))
        assert refused.status_code == 403, (path, refused.text)
    listed = ok(admin.get(f"{ORG}/projects", headers=bearer(my_owner)))
    assert [p["id"] for p in listed["data"]] == [mine["id"]]


def _key_ids(admin: httpx.Client, project_id: str) -> list[str]:
    keys = ok(admin.get(f"{ORG}/projects/{project_id}/api_keys", params={"limit": 100}))
    return [k["id"] for k in keys["data"]]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def second_ingress(full_stack: RunningStack) -> Iterator[httpx.Client]:
    """Another ingress replica of the stack, on its own port."""
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")},
        **full_stack.env,
        "SWITCHYARD_INGRESS_PORT": str(port),
        "SWITCHYARD_AUTO_ROUTING": "false",  # starts faster; not needed here
    }
    log = (full_stack.layout.home / "log" / "ingress-replica.log").open("wb")
    process = subprocess.Popen(
        [str(REPO_ROOT / ".local" / "venv" / "bin" / "switchyard"), "ingress"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0, trust_env=False)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "the second ingress died"
            assert time.monotonic() < deadline, "the second ingress did not start"
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_a_revoked_key_stops_on_every_replica_within_a_second(
    admin: httpx.Client, second_ingress: httpx.Client
) -> None:
    project = new_project(admin)
    account = new_account(admin, project["id"])
    key = account["api_key"]["value"]
    assert chat_with(second_ingress, key).status_code == 200  # created on the first replica

    ok(admin.delete(f"{ORG}/projects/{project['id']}/api_keys/{account['api_key']['id']}"))
    revoked_at = time.monotonic()
    while chat_with(second_ingress, key).status_code != 401:
        assert time.monotonic() - revoked_at < 1.0, "the other replica still takes the key"
        time.sleep(0.02)
