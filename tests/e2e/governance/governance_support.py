"""What the governance tests share: OpenAI's spec schemas to check answers against, and the
steps that set a project up through the Admin API."""

from __future__ import annotations

import functools
import json
import uuid
from decimal import Decimal
from typing import Any

import httpx
import jsonschema_rs
import yaml

from services.stack._layout import REPO_ROOT

SPEC = REPO_ROOT.parent / "shared" / "specs" / "openai-openapi.yaml"
ORG = "/v1/organization"


@functools.cache
def _spec() -> dict[str, Any]:
    # Through JSON: YAML reads date-like example strings as dates, which no JSON schema has.
    spec: dict[str, Any] = json.loads(
        json.dumps(yaml.safe_load(SPEC.read_text(encoding="utf-8")), default=str)
    )
    return spec


def assert_shape(schema: str, body: Any) -> None:
    """``body`` validates against ``#/components/schemas/<schema>`` of OpenAI's spec."""
    document = {"$ref": f"#/components/schemas/{schema}", "components": _spec()["components"]}
    jsonschema_rs.Draft202012Validator(document).validate(body)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def chat_with(
    http: httpx.Client, key: str, text: str = "hello there", **body: Any
) -> httpx.Response:
    return http.post(
        "/v1/chat/completions",
        headers=bearer(key),
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **body},
    )


def new_project(admin: httpx.Client, name: str = "team") -> dict[str, Any]:
    project: dict[str, Any] = ok(admin.post(f"{ORG}/projects", json={"name": name}))
    assert_shape("Project", project)
    return project


def new_account(
    admin: httpx.Client, project_id: str, name: str = "ci", **extra: Any
) -> dict[str, Any]:
    account: dict[str, Any] = ok(
        admin.post(f"{ORG}/projects/{project_id}/service_accounts", json={"name": name, **extra})
    )
    if account["role"] == "member":
        # OpenAI creates members only; an owner account is Switchyard's addition, outside the
        # schema's enum for this response.
        assert_shape("ProjectServiceAccountCreateResponse", account)
    return account


def new_key(admin: httpx.Client, project_id: str, role: str = "member") -> str:
    """A fresh service account's key in the project."""
    value: str = new_account(admin, project_id, f"{role} account", role=role)["api_key"]["value"]
    return value


def new_user(admin: httpx.Client, label: str, role: str = "reader") -> dict[str, Any]:
    """A person of the organisation, with a unique address made from ``label``."""
    email = f"{label}-{uuid.uuid4().hex[:12]}@example.com"
    user: dict[str, Any] = ok(admin.post(f"{ORG}/users", json={"email": email, "role": role}))
    assert_shape("User", user)
    return user


def grant(admin: httpx.Client, project_id: str, amount: Decimal | str) -> dict[str, Any]:
    granted: dict[str, Any] = ok(
        admin.post(f"{ORG}/projects/{project_id}/credit/grants", json={"amount": str(amount)})
    )
    return granted


def credit(http: httpx.Client, project_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = ok(http.get(f"{ORG}/projects/{project_id}/credit"))
    return shown
