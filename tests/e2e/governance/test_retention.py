"""Data retention per project (issue 7): zero retention is the default; a project that opts in
keeps its prompts and answers, for as long as it chose, shown only to its owners."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from contracts.topics import REQUEST_LOG
from services.stack import RunningStack
from tests.e2e.e2e_support import unique
from tests.e2e.governance.governance_support import (
    ORG,
    assert_shape,
    bearer,
    chat_with,
    new_key,
    new_project,
    ok,
)
from tests.integration.common.topic_reading import records_with_keys

pytestmark = pytest.mark.e2e


def request_logs(
    admin: httpx.Client, project_id: str, key: str | None = None, **params: Any
) -> httpx.Response:
    return admin.get(
        f"{ORG}/projects/{project_id}/request_logs",
        params=params,
        headers=bearer(key) if key else {},
    )


def wait_logs(admin: httpx.Client, project_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        data: list[dict[str, Any]] = ok(request_logs(admin, project_id, limit=100))["data"]
        if len(data) >= count or time.monotonic() > deadline:
            return data
        time.sleep(0.3)


def test_a_retaining_project_keeps_its_log_and_the_rest_keep_nothing(
    admin: httpx.Client, full_stack: RunningStack
) -> None:
    keeping, default = new_project(admin, "keeps"), new_project(admin, "keeps nothing")
    shown = ok(admin.get(f"{ORG}/projects/{default['id']}/data_retention"))
    assert_shape("ProjectDataRetention", shown)
    assert shown["type"] == "organization_default"
    chosen = ok(
        admin.post(
            f"{ORG}/projects/{keeping['id']}/data_retention",
            json={"retention_type": "none", "retention_days": 7},
        )
    )
    assert_shape("ProjectDataRetention", {k: v for k, v in chosen.items() if k != "retention_days"})
    assert chosen == {"object": "project.data_retention", "type": "none", "retention_days": 7}

    keeping_key, default_key = new_key(admin, keeping["id"]), new_key(admin, default["id"])
    kept_prompt, dropped_prompt = unique("keep me"), unique("forget me")
    sync = chat_with(admin, keeping_key, kept_prompt)
    assert sync.status_code == 200
    with admin.stream(
        "POST",
        "/v1/chat/completions",
        headers=bearer(keeping_key),
        json={
            "model": "gpt-4o-mini",
            "stream": True,
            "messages": [{"role": "user", "content": kept_prompt + " streamed"}],
        },
    ) as streamed:
        assert streamed.status_code == 200
        streamed_id = streamed.headers["x-request-id"]
        streamed.read()
    assert chat_with(admin, default_key, dropped_prompt).status_code == 200

    logs = wait_logs(admin, keeping["id"], 2)
    by_id = {entry["id"]: entry for entry in logs}
    assert set(by_id) == {sync.headers["x-request-id"], streamed_id}
    kept = by_id[sync.headers["x-request-id"]]
    assert kept_prompt in json.dumps(kept["request"])
    # Both in Switchyard's own chat shape, the same whichever protocol the caller spoke.
    assert sync.json()["choices"][0]["message"]["content"] in json.dumps(kept["response"])
    assert 6.9 * 86400 < kept["expires_at"] - kept["created_at"] <= 7 * 86400
    assert isinstance(by_id[streamed_id]["response"], list)  # the stream's deltas

    # Only the project's owners read it.
    member, owner = keeping_key, new_key(admin, keeping["id"], role="owner")
    assert request_logs(admin, keeping["id"], owner).status_code == 200
    assert request_logs(admin, keeping["id"], member).status_code == 403
    outsider = new_key(admin, default["id"], role="owner")
    assert request_logs(admin, keeping["id"], outsider).status_code == 403

    # The default project: no log, and its prompt never went to the request log topic.
    assert ok(request_logs(admin, default["id"]))["data"] == []
    carried = asyncio.run(
        records_with_keys(
            full_stack.kafka_bootstrap,
            REQUEST_LOG.name,
            {keeping["id"].encode(), default["id"].encode()},
        )
    )
    assert any(kept_prompt.encode() in r.value for r in carried if r.value)
    assert not any(dropped_prompt.encode() in (r.value or b"") for r in carried)
    assert all(r.key == keeping["id"].encode() for r in carried)

    # Back to zero retention: the next request is not kept.
    ok(
        admin.post(
            f"{ORG}/projects/{keeping['id']}/data_retention",
            json={"retention_type": "zero_data_retention"},
        )
    )
    after = chat_with(admin, keeping_key, unique("not kept"))
    assert after.status_code == 200
    time.sleep(2.0)
    assert after.headers["x-request-id"] not in {
        e["id"] for e in wait_logs(admin, keeping["id"], 3)
    }
