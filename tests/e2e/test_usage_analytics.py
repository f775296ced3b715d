"""Usage analytics against the real stack (issue 9): OpenAI's usage and costs API and
Switchyard's request log and query endpoint, through the ingress, scoped by the key's role."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.e2e_support import Metering, unique
from tests.e2e.governance.governance_support import (
    ORG,
    assert_shape,
    bearer,
    chat_with,
    new_account,
    new_key,
    new_project,
    ok,
)

pytestmark = pytest.mark.e2e


def _wait(check: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_usage_costs_and_the_request_log_agree_and_are_scoped(
    admin: httpx.Client, metering: Metering
) -> None:
    project, other = new_project(admin, "analysed"), new_project(admin, "someone else")
    account = new_account(admin, project["id"])
    key, key_id = account["api_key"]["value"], account["api_key"]["id"]
    answers = [
        chat_with(admin, key, unique("usage"), user="end-user-7", max_tokens=20) for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    theirs = chat_with(admin, new_key(admin, other["id"]), unique("theirs"))
    rows = [metering.wait_rows(a.headers["x-request-id"])[0] for a in answers]
    metering.wait_rows(theirs.headers["x-request-id"])
    spent = sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0))
    assert all(r["user_tag"] == "end-user-7" for r in rows)

    start = int(time.time()) - 86400
    completions = ok(
        admin.get(
            f"{ORG}/usage/completions",
            params={
                "start_time": start,
                "bucket_width": "1d",
                "project_ids": project["id"],
                "group_by": ["project_id", "api_key_id", "user_id", "model"],
            },
        )
    )
    assert_shape("UsageResponse", completions)
    results = [r for bucket in completions["data"] for r in bucket["results"]]
    assert sum(r["num_model_requests"] for r in results) == 3
    assert {(r["api_key_id"], r["user_id"]) for r in results} == {(key_id, "end-user-7")}
    assert sum(r["input_tokens"] for r in results) == sum(r["input_tokens"] for r in rows)

    costs = ok(
        admin.get(
            f"{ORG}/costs",
            params={"start_time": start, "project_ids": project["id"], "group_by": "project_id"},
        )
    )
    assert_shape("UsageResponse", costs)
    billed = sum(
        (Decimal(str(r["amount"]["value"])) for b in costs["data"] for r in b["results"]),
        Decimal(0),
    )
    assert billed == spent  # exact: the JSON number carries the Decimal's digits

    # The request log and the query endpoint, as the project's owner sees them.
    owner = new_key(admin, project["id"], role="owner")
    logged = _wait(
        lambda: ok(admin.get("/v1/usage/requests", params={"since": "1h"}, headers=bearer(owner)))[
            "data"
        ]
    )
    assert {r["request_id"] for r in logged} == {a.headers["x-request-id"] for a in answers}
    assert sum(Decimal(r["cost_usd"]) for r in logged) == spent
    by_model = admin.get(
        "/v1/usage/query",
        params={"group_by": "model", "metrics": "requests,cost", "since": "1h", "format": "csv"},
        headers=bearer(owner),
    )
    assert by_model.status_code == 200, by_model.text
    assert by_model.headers["x-switchyard-source"] in ("usage_hour", "usage_events")
    header, *lines = by_model.text.strip().splitlines()
    assert "cost_usd" in header
    assert len(lines) == 1
    assert lines[0].startswith("openai/gpt-4o-mini")
    # A member calls models but reads no usage.
    assert admin.get("/v1/usage/requests", headers=bearer(key)).status_code == 403
    assert (
        admin.get(f"{ORG}/costs", params={"start_time": start}, headers=bearer(key)).status_code
        == 403
    )
