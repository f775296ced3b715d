"""``GET /v1/organization/audit_logs`` on metering's app, over a real chDB: every answer checked
against OpenAI's ``ListAuditLogsResponse``, OpenAI's query names and its 400 error shape."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
import yaml
from clickhouse_connect.driver.client import Client

from contracts.audit import SWITCHYARD_EVENT_TYPES, AuditEvent
from services.metering.api import audit_scope, create_app
from services.metering.audit_store import AuditStore
from services.metering.metrics import MeteringMetrics
from services.metering.store import UsageStore
from services.stack._layout import REPO_ROOT
from tests.unit.metering.test_audit_store import ADMIN, ALICE, EVENTS, T0, audit_event

ADMIN_KEY = "sy-admin-test-key-0123456789abcdef"
ROUTE = "/v1/organization/audit_logs"
SPEC = REPO_ROOT.parent / "shared" / "specs" / "openai-openapi.yaml"


@functools.cache
def _components() -> dict[str, Any]:
    # Through JSON: YAML reads date-like example strings as dates, which no JSON schema has.
    spec = json.loads(json.dumps(yaml.safe_load(SPEC.read_text(encoding="utf-8")), default=str))
    components: dict[str, Any] = spec["components"]
    return components


@functools.cache
def _components_with_switchyard_types() -> dict[str, Any]:
    """OpenAI's components, its event type enum extended with Switchyard's own types: the one
    place where Switchyard's answers go beyond OpenAI's schema (contracts.audit)."""
    components = copy.deepcopy(_components())
    components["schemas"]["AuditLogEventType"]["enum"] += sorted(SWITCHYARD_EVENT_TYPES)
    return components


def assert_shape(body: Any, *, switchyard_types: bool = False) -> None:
    components = _components_with_switchyard_types() if switchyard_types else _components()
    document = {"$ref": "#/components/schemas/ListAuditLogsResponse", "components": components}
    jsonschema_rs.Draft202012Validator(document).validate(body)


@pytest.fixture
async def stored(store: UsageStore, clickhouse: Client) -> UsageStore:
    clickhouse.command("TRUNCATE TABLE audit_log")
    await AuditStore(store).insert(list(EVENTS.values()))
    return store


def client_of(store: UsageStore, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    app = create_app(store, MeteringMetrics(), lambda: True, admin_key=ADMIN_KEY)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://metering", headers=headers
    )


@pytest.fixture
async def api(stored: UsageStore) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(stored, {"authorization": f"Bearer {ADMIN_KEY}"}) as client:
        yield client


def ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["data"]]


async def test_openai_types_answer_in_openais_exact_schema(api: httpx.AsyncClient) -> None:
    openai_types = ["project.created", "api_key.created", "user.added"]
    response = await api.get(ROUTE, params={"event_types[]": openai_types})

    assert response.status_code == 200
    body = response.json()
    assert_shape(body)
    assert ids(body) == [EVENTS[n].id for n in ("org_user", "b_created", "a_key", "a_created")]
    assert body["first_id"] == EVENTS["org_user"].id
    assert body["last_id"] == EVENTS["a_created"].id
    assert body["has_more"] is False
    assert body["object"] == "list"


async def test_every_event_answers_in_openais_schema_with_switchyards_types(
    api: httpx.AsyncClient,
) -> None:
    body = (await api.get(ROUTE)).json()

    assert_shape(body, switchyard_types=True)
    assert len(body["data"]) == len(EVENTS)
    with pytest.raises(jsonschema_rs.ValidationError):
        assert_shape(body)  # OpenAI's enum alone does not know request.denied


async def test_an_event_renders_as_openais_audit_log_object(api: httpx.AsyncClient) -> None:
    body = (await api.get(ROUTE, params={"resource_ids[]": "proj_a"})).json()

    assert body["data"] == [
        {
            "id": EVENTS["a_created"].id,
            "type": "project.created",
            "effective_at": T0,
            "project": {"id": "proj_a", "name": "Alpha"},
            # the bootstrap admin key: no owner, so no OpenAI key type to give
            "actor": {"type": "api_key", "api_key": {"id": "key_admin"}},
            "project.created": {"id": "proj_a", "data": {"name": "Alpha"}},
            "outcome": "success",
        }
    ]


async def test_a_denied_request_renders_with_its_reason_and_outcome(
    api: httpx.AsyncClient,
) -> None:
    body = (await api.get(ROUTE, params={"event_types[]": "request.denied"})).json()

    assert body["data"] == [
        {
            "id": EVENTS["org_denied"].id,
            "type": "request.denied",
            "effective_at": T0 + 60,
            "actor": {"type": "api_key", "api_key": {"ip_address": "203.0.113.9"}},
            "request.denied": {"reason": "invalid_api_key"},
            "outcome": "denied",
            "error_code": "authentication",
        },
        {
            "id": EVENTS["b_denied"].id,
            "type": "request.denied",
            "effective_at": T0 + 30,
            "project": {"id": "proj_b"},
            "actor": {
                "type": "api_key",
                "api_key": {
                    "id": "key_ci",
                    "type": "service_account",
                    "service_account": {"id": "svc_ci"},
                },
            },
            "request.denied": {"id": "openai/gpt-4o", "reason": "model_not_allowed"},
            "outcome": "denied",
            "error_code": "permission_denied",
        },
    ]


async def test_actors_sessions_owned_admin_keys_and_the_system(
    store: UsageStore, clickhouse: Client
) -> None:
    clickhouse.command("TRUNCATE TABLE audit_log")
    events = [
        audit_event("user.updated", at_ms=T0 * 1000 + 3, actor=ALICE, details={"role": "owner"}),
        audit_event(
            "rate_limit.updated",
            at_ms=T0 * 1000 + 2,
            actor={**ADMIN, "user_id": "user_alice", "user_email": "alice@example.com"},
            target_id="rl_1",
            details={"max_requests_per_1_minute": 60},
        ),
        audit_event(
            "spend_alert.triggered",
            at_ms=T0 * 1000 + 1,
            project_id="proj_a",
            actor={"type": "system"},
            target_id="alert_1",
            details={"threshold_cents": 5000},
        ),
    ]
    await AuditStore(store).insert(events)
    async with client_of(store, {"x-api-key": ADMIN_KEY}) as client:
        body = (await client.get(ROUTE)).json()

    assert_shape(body, switchyard_types=True)
    session, owned, system = body["data"]
    assert session["actor"] == {
        "type": "session",
        "session": {
            "user": {"id": "user_alice", "email": "alice@example.com"},
            "ip_address": "10.0.0.1",
        },
    }
    assert session["user.updated"] == {"changes_requested": {"role": "owner"}}
    # An admin key a person owns is that user's key, as OpenAI's admin keys are.
    assert owned["actor"]["api_key"] == {
        "id": "key_admin",
        "type": "user",
        "user": {"id": "user_alice", "email": "alice@example.com"},
    }
    assert owned["rate_limit.updated"] == {
        "id": "rl_1",
        "changes_requested": {"max_requests_per_1_minute": 60},
    }
    assert system["actor"] is None
    assert system["spend_alert.triggered"] == {"id": "alert_1", "threshold_cents": 5000}


async def test_filters_by_openais_bracketed_names(api: httpx.AsyncClient) -> None:
    params: list[tuple[str, str | int | float | bool | None]] = [
        ("project_ids[]", "proj_a"),
        ("project_ids[]", "proj_b"),
        ("effective_at[gte]", T0 + 10),
        ("effective_at[lt]", T0 + 50),
        ("actor_ids[]", "svc_ci"),
        ("actor_ids[]", "user_alice"),
    ]
    body = (await api.get(ROUTE, params=params)).json()

    assert ids(body) == [EVENTS["b_denied"].id, EVENTS["a_key"].id]
    emails = await api.get(ROUTE, params={"actor_emails[]": "alice@example.com"})
    assert ids(emails.json()) == [EVENTS["org_user"].id, EVENTS["a_key"].id]
    bare = await api.get(ROUTE, params={"project_ids": "proj_b"})  # without brackets too
    assert ids(bare.json()) == [EVENTS["b_denied"].id, EVENTS["b_created"].id]


async def test_pages_with_after_and_before(api: httpx.AsyncClient) -> None:
    first = (await api.get(ROUTE, params={"limit": 3})).json()
    second = (await api.get(ROUTE, params={"limit": 3, "after": first["last_id"]})).json()
    third = (await api.get(ROUTE, params={"limit": 3, "after": second["last_id"]})).json()
    back = (await api.get(ROUTE, params={"limit": 3, "before": second["first_id"]})).json()

    for page in (first, second, third, back):
        assert_shape(page, switchyard_types=True)
    assert (first["has_more"], second["has_more"], third["has_more"]) == (True, True, False)
    assert ids(first) + ids(second) + ids(third) == [EVENTS[name].id for name in reversed(EVENTS)]
    assert ids(back) == ids(first)
    assert len(ids(third)) == 1
    default = (await api.get(ROUTE)).json()
    assert len(default["data"]) == len(EVENTS)  # the default limit, 20, holds them all


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ([("limit", "1"), ("limit", "2")], "limit"),
        ({"effective_at[gt]": "-1"}, "effective_at[gt]"),
        ({"effective_at[gte]": "1.5"}, "effective_at[gte]"),
        ({"effective_at[after]": "1"}, "effective_at[after]"),
        ({"event_types[]": "Project Created"}, "event_types[]"),
        ({"project_ids[]": ""}, "project_ids[]"),
        ({"resource_ids[]": "x" * 600}, "resource_ids[]"),
        ({"after": "proj_a"}, "after"),
        ({"before": "audit_xyz"}, "before"),
        ({"after": "audit_" + "0" * 24, "before": "audit_" + "1" * 24}, "before"),
        ({"after": "audit_" + "0" * 24}, "after"),  # well formed, but no such event
        ({"tenant_only": "true"}, "tenant_only"),
    ],
)
async def test_bad_parameters_are_400_in_openais_error_shape(
    api: httpx.AsyncClient, params: Any, param: str
) -> None:
    response = await api.get(ROUTE, params=params)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_request"
    assert error["param"] == param
    assert error["message"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer sy-admin-wrong-key-0123456789ab"}, {"x-api-key": "nope"}],
)
async def test_refused_without_the_admin_key(stored: UsageStore, headers: dict[str, str]) -> None:
    async with client_of(stored, headers) as client:
        # A bad parameter too: authentication is checked first.
        response = await client.get(ROUTE, params={"limit": "0"})

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert "audit_" not in response.text


async def test_the_scope_comes_from_the_audit_scope_dependency(stored: UsageStore) -> None:
    app = create_app(stored, MeteringMetrics(), lambda: True, admin_key=ADMIN_KEY)

    async def only_project_a() -> frozenset[str]:
        return frozenset({"proj_a"})

    app.dependency_overrides[audit_scope] = only_project_a
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://metering"
    ) as client:
        body = (await client.get(ROUTE)).json()
        asks_for_b = (await client.get(ROUTE, params={"project_ids[]": "proj_b"})).json()
        org_cursor = await client.get(ROUTE, params={"after": EVENTS["org_user"].id})

    assert ids(body) == [EVENTS[n].id for n in ("a_used", "a_key", "a_created")]
    assert asks_for_b["data"] == []
    assert org_cursor.status_code == 400


def test_a_stored_event_round_trips_its_wire_form() -> None:
    """The factory's events are valid wire messages (what the consumer would have read)."""
    for event in EVENTS.values():
        assert AuditEvent.model_validate_json(event.to_bytes()) == event
