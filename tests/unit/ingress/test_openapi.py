"""The served OpenAPI document: its schemas are OpenAI's (regenerated and compared), its paths
are the routes the app serves, and what the ingress renders validates against it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
import yaml
from schemathesis.core.result import Ok

from contracts.audit import AuditActor, AuditEvent
from contracts.catalogue import default_catalogue
from contracts.chat import (
    ChatDelta,
    ChatResponse,
    FinishReason,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
)
from contracts.errors import ErrorCode, ErrorInfo
from contracts.governance import (
    AdminKeyRecord,
    ApiKeyRecord,
    DataRetentionRecord,
    GovernanceRecord,
    ModelAccess,
    ModelPermissionsRecord,
    ProjectRecord,
    ProjectUserRecord,
    RateLimitRecord,
    ServiceAccountRecord,
    SpendAlertRecord,
    SpendLimitRecord,
    UserRecord,
    record_key,
)
from services.common.access import KeyRing, Permission
from services.ingress.app import create_app
from services.ingress.openapi import (
    DROPPED_VARIANTS,
    REQUEST_PROPERTIES,
    SCHEMAS_FILE,
    build_openapi,
    openapi_document,
    trim_openai_schemas,
)
from services.ingress.openapi_admin import SWITCHYARD_FIELDS, SWITCHYARD_SCHEMAS
from services.ingress.protocols.openai_chat import ChunkRenderer, render_completion, render_error
from services.ingress.settings import IngressSettings
from services.metering.audit_render import render_list
from services.metering.audit_store import AuditPage
from services.stack._layout import REPO_ROOT
from tests.unit.ingress.conftest import ADMIN_KEY

OPENAI_SPEC = REPO_ROOT.parent / "shared" / "specs" / "openai-openapi.yaml"


@pytest.fixture(scope="module")
def openai_spec() -> dict[str, Any]:
    with OPENAI_SPEC.open(encoding="utf-8") as spec_file:
        spec: dict[str, Any] = yaml.load(spec_file, Loader=yaml.CSafeLoader)
    return spec


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    served: dict[str, Any] = json.loads(openapi_document())
    return served


def test_the_kept_schemas_are_openais_trimmed(openai_spec: dict[str, Any]) -> None:
    kept = json.loads(SCHEMAS_FILE.read_text(encoding="utf-8"))
    # On a failure, refresh with `python -m services.ingress.openapi <openai-openapi.yaml>`.
    assert kept == trim_openai_schemas(openai_spec)


def test_trimming_keeps_the_honoured_parameters_and_drops_the_refused_variants(
    openai_spec: dict[str, Any],
) -> None:
    schemas = trim_openai_schemas(openai_spec)
    request = schemas["CreateChatCompletionRequest"]
    assert set(request["properties"]) == set(REQUEST_PROPERTIES)
    assert request["required"] == ["model", "messages"]
    assert "allOf" not in request
    text = json.dumps(schemas, separators=(",", ":"))
    assert not [name for name in DROPPED_VARIANTS if name in text]
    assert '"nullable"' not in text
    # Every reference resolves inside the kept schemas.
    refs = {part.split('"')[0] for part in text.split('"$ref":"#/components/schemas/')[1:]}
    assert refs <= set(schemas)
    # Outside the trimmed unions, a schema is OpenAI's own, word for word.
    assert schemas["Model"] == openai_spec["components"]["schemas"]["Model"]


async def test_the_document_describes_every_served_route_and_no_other(
    document: dict[str, Any],
) -> None:
    app = create_app(IngressSettings(admin_key=ADMIN_KEY))
    # FastAPI's own account of the routes (it is not served): every route in the schema, under
    # the prefixes of the routers it was included through (``/v1/organization``).
    generated: dict[str, dict[str, Any]] = app.openapi()["paths"]
    served = {
        (path.replace("/v1/models/{model_id}", "/v1/models/{model}"), method)
        for path, item in generated.items()
        for method in item
    }
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert served  # the walk found the routes at all
    assert described == served


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_dict(document)
    labels = set()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        labels.add(result.ok().label)
    assert labels == {
        "POST /v1/chat/completions",
        "GET /v1/models",
        "GET /v1/models/{model}",
        "GET /v1/providers",
        "GET /healthz",
        "GET /metrics",
        "GET /v1/organization/projects",
        "POST /v1/organization/projects",
        "GET /v1/organization/projects/{project_id}",
        "POST /v1/organization/projects/{project_id}",
        "POST /v1/organization/projects/{project_id}/archive",
        "GET /v1/organization/projects/{project_id}/service_accounts",
        "POST /v1/organization/projects/{project_id}/service_accounts",
        "GET /v1/organization/projects/{project_id}/service_accounts/{service_account_id}",
        "DELETE /v1/organization/projects/{project_id}/service_accounts/{service_account_id}",
        "GET /v1/organization/projects/{project_id}/api_keys",
        "GET /v1/organization/projects/{project_id}/model_permissions",
        "POST /v1/organization/projects/{project_id}/model_permissions",
        "DELETE /v1/organization/projects/{project_id}/model_permissions",
        "GET /v1/organization/projects/{project_id}/api_keys/{api_key_id}",
        "DELETE /v1/organization/projects/{project_id}/api_keys/{api_key_id}",
        "POST /v1/organization/projects/{project_id}/api_keys",
        "POST /v1/organization/projects/{project_id}/service_accounts/{service_account_id}"
        "/api_keys",
        "GET /v1/organization/admin_api_keys",
        "POST /v1/organization/admin_api_keys",
        "GET /v1/organization/admin_api_keys/{key_id}",
        "DELETE /v1/organization/admin_api_keys/{key_id}",
        "GET /v1/organization/users",
        "POST /v1/organization/users",
        "GET /v1/organization/users/{user_id}",
        "POST /v1/organization/users/{user_id}",
        "DELETE /v1/organization/users/{user_id}",
        "GET /v1/organization/roles",
        "GET /v1/organization/roles/{role_id}",
        "GET /v1/organization/users/{user_id}/roles",
        "POST /v1/organization/users/{user_id}/roles",
        "DELETE /v1/organization/users/{user_id}/roles/{role_id}",
        "GET /v1/organization/projects/{project_id}/users",
        "POST /v1/organization/projects/{project_id}/users",
        "GET /v1/organization/projects/{project_id}/users/{user_id}",
        "POST /v1/organization/projects/{project_id}/users/{user_id}",
        "DELETE /v1/organization/projects/{project_id}/users/{user_id}",
        "GET /v1/organization/projects/{project_id}/rate_limits",
        "POST /v1/organization/projects/{project_id}/rate_limits/{rate_limit_id}",
        "DELETE /v1/organization/projects/{project_id}/rate_limits/{rate_limit_id}",
        "GET /v1/organization/projects/{project_id}/spend_limit",
        "POST /v1/organization/projects/{project_id}/spend_limit",
        "DELETE /v1/organization/projects/{project_id}/spend_limit",
        "GET /v1/organization/projects/{project_id}/data_retention",
        "POST /v1/organization/projects/{project_id}/data_retention",
        "GET /v1/organization/projects/{project_id}/credit",
        "POST /v1/organization/projects/{project_id}/credit/grants",
        "GET /v1/organization/projects/{project_id}/request_logs",
        "GET /v1/organization/usage/completions",
        "GET /v1/organization/usage/embeddings",
        "GET /v1/organization/costs",
        "GET /v1/usage/requests",
        "GET /v1/usage/query",
        "GET /v1/organization/projects/{project_id}/spend_alerts",
        "POST /v1/organization/projects/{project_id}/spend_alerts",
        "GET /v1/organization/projects/{project_id}/spend_alerts/{alert_id}",
        "POST /v1/organization/projects/{project_id}/spend_alerts/{alert_id}",
        "DELETE /v1/organization/projects/{project_id}/spend_alerts/{alert_id}",
        "GET /v1/organization/audit_logs",
    }
    (scheme,) = document["components"]["securitySchemes"].items()
    assert scheme[0] == "ApiKeyAuth"
    assert {k: v for k, v in scheme[1].items() if k != "description"} == {
        "type": "http",
        "scheme": "bearer",
    }


def test_every_reference_resolves_and_every_operation_id_is_unique(
    document: dict[str, Any],
) -> None:
    text = json.dumps(document, separators=(",", ":"))
    refs = {part.split('"')[0] for part in text.split('"$ref":"#/components/schemas/')[1:]}
    assert refs <= set(document["components"]["schemas"])
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_every_admin_operation_names_its_permission_and_errors(document: dict[str, Any]) -> None:
    permissions = {p.value for p in Permission}
    admin = [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        if path.startswith("/v1/organization/")
        for method, operation in item.items()
    ]
    assert len(admin) > 50
    for label, operation in admin:
        named = {p for p in permissions if f"`{p}`" in operation["description"]}
        assert "Needs " in operation["description"], label
        assert named, label
        assert {"200", "400", "401", "403", "404"} <= set(operation["responses"]), label


def test_switchyards_additions_are_marked(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in SWITCHYARD_SCHEMAS:
        assert name.startswith("Switchyard")
        assert "Switchyard" in schemas[name]["description"], name
    for name, fields in SWITCHYARD_FIELDS.items():
        for field, value in fields.items():
            assert (field in schemas[name]["properties"]) == (value is not None), (name, field)
    # An operation whose body or answer is Switchyard's own says so.
    for item in document["paths"].values():
        for operation in item.values():
            if '"#/components/schemas/Switchyard' in json.dumps(operation):
                assert "Switchyard's addition" in operation["description"], operation["summary"]


async def test_it_is_served_without_a_key(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/openapi.json", headers={"authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == build_openapi(json.loads(SCHEMAS_FILE.read_text(encoding="utf-8")))


# ---- what the ingress renders validates against the document ------------------------------


def validator(document: dict[str, Any], name: str) -> jsonschema_rs.Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema_rs.Draft202012Validator(schema)


USAGE = Usage(input_tokens=10, output_tokens=5, cache_read_tokens=2, reasoning_tokens=1)


@pytest.mark.parametrize("simulated", [True, False])
@pytest.mark.parametrize(
    "response",
    [
        ChatResponse(content=[TextPart(text="hi")], usage=USAGE),
        ChatResponse(
            content=[ToolCallPart(id="call_1", name="f", arguments="{}")],
            finish_reason=FinishReason.TOOL_CALLS,
        ),
        ChatResponse(finish_reason=FinishReason.LENGTH),
    ],
)
def test_a_rendered_completion_matches_the_document(
    document: dict[str, Any], response: ChatResponse, simulated: bool
) -> None:
    body = render_completion(
        response, completion_id="chatcmpl-1", model="m", created=1, simulated=simulated
    )
    validator(document, "CreateChatCompletionResponse").validate(body)


@pytest.mark.parametrize("include_usage", [True, False])
def test_rendered_chunks_match_the_document(document: dict[str, Any], include_usage: bool) -> None:
    renderer = ChunkRenderer(
        completion_id="chatcmpl-1", model="m", created=1, include_usage=include_usage
    )
    chunks = [renderer.first()]
    for delta in (
        ChatDelta(text="hi"),
        ChatDelta(tool_call=ToolCallDelta(index=0, id="call_1", name="f", arguments="")),
        ChatDelta(tool_call=ToolCallDelta(index=0, arguments="{}")),
        ChatDelta(finish_reason=FinishReason.STOP, usage=USAGE),
    ):
        chunks += renderer.render(delta)
    check = validator(document, "CreateChatCompletionStreamResponse")
    for chunk in chunks:
        check.validate(chunk)


@pytest.mark.parametrize("code", list(ErrorCode))
def test_a_rendered_error_matches_the_document(document: dict[str, Any], code: ErrorCode) -> None:
    body = render_error(ErrorInfo(code=code, message="no", param="messages[0].content"))
    validator(document, "ErrorResponse").validate(body)


async def test_the_model_routes_match_the_document(
    document: dict[str, Any], app_client: httpx.AsyncClient
) -> None:
    listed = await app_client.get("/v1/models")
    validator(document, "ListModelsResponse").validate(listed.json())
    card = next(iter(default_catalogue().cards()))
    one = await app_client.get(f"/v1/models/{card.canonical_id}")
    assert one.status_code == 200
    validator(document, "Model").validate(one.json())


# ---- what the Admin API renders validates against the document -----------------------------

_RECORDS: list[GovernanceRecord] = [
    ProjectRecord(id="proj_a", name="A", created_at=1),
    UserRecord(
        id="user_a", email="a@example.com", name="Ann", roles=["owner", "auditor"], created_at=2
    ),
    UserRecord(id="user_b", email="b@example.com", created_at=3),
    ProjectUserRecord(
        id=ProjectUserRecord.make_id("proj_a", "user_b"),
        project_id="proj_a",
        user_id="user_b",
        role="analyst",
        added_at=4,
    ),
    ServiceAccountRecord(
        id="svc_acct_a", project_id="proj_a", name="bot", role="owner", created_at=5
    ),
    ApiKeyRecord(
        id="key_svc",
        project_id="proj_a",
        service_account_id="svc_acct_a",
        name="bot key",
        redacted_value="sk-sy-proj-...abcd",
        sha256="0" * 64,
        created_at=6,
    ),
    ApiKeyRecord(
        id="key_person",
        project_id="proj_a",
        user_id="user_b",
        name="b key",
        redacted_value="sk-sy-proj-...efgh",
        sha256="1" * 64,
        created_at=7,
        expires_at=100,
    ),
    AdminKeyRecord(
        id="key_admin",
        name="Ann's",
        redacted_value="sk-sy-admin-...ijkl",
        sha256="2" * 64,
        created_at=8,
        user_id="user_a",
    ),
    AdminKeyRecord(
        id="key_org",
        name="ownerless",
        redacted_value="sk-sy-admin-...mnop",
        sha256="3" * 64,
        created_at=9,
    ),
    RateLimitRecord(
        id="proj_a:openai/gpt-4o-mini",
        project_id="proj_a",
        model="openai/gpt-4o-mini",
        max_requests_per_1_minute=10,
        max_requests_per_1_day=100,
    ),
    SpendLimitRecord(id="proj_a", threshold_cents=1000),
    SpendAlertRecord(
        id="alert_a",
        project_id="proj_a",
        threshold_cents=500,
        webhook_url="https://hooks.example.com/a",
        signing_secret="whsec_x",
        created_at=10,
    ),
    DataRetentionRecord(id="proj_a", type="none", retention_days=7),
    ModelPermissionsRecord(
        id="proj_a", access=ModelAccess(mode="allow_list", model_ids=["openai/gpt-4o-mini"])
    ),
]


@pytest.fixture
async def admin_client() -> AsyncIterator[httpx.AsyncClient]:
    """The unstarted app (as ``app_client``), its governance view holding ``_RECORDS``."""
    app = create_app(IngressSettings(admin_key=ADMIN_KEY))
    keys: KeyRing = app.state.keys
    for record in _RECORDS:
        keys.governance.apply(record_key(record.kind, record.id), record.to_bytes())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://ingress",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    ) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("projects", "ProjectListResponse"),
        ("users", "UserListResponse"),
        ("users/user_a", "User"),
        ("roles", "PublicRoleListResource"),
        ("roles/role_org_owner", "Role"),
        ("users/user_a/roles", "RoleListResource"),
        ("admin_api_keys", "ApiKeyList"),
        ("admin_api_keys/key_org", "AdminApiKey"),
        ("projects/proj_a/users", "ProjectUserListResponse"),
        ("projects/proj_a/service_accounts", "ProjectServiceAccountListResponse"),
        ("projects/proj_a/service_accounts/svc_acct_a", "ProjectServiceAccount"),
        ("projects/proj_a/api_keys/key_svc", "ProjectApiKey"),
        ("projects/proj_a/api_keys/key_person", "ProjectApiKey"),
        ("projects/proj_a/rate_limits", "ProjectRateLimitListResponse"),
        ("projects/proj_a/spend_limit", "ProjectSpendLimitResource"),
        ("projects/proj_a/spend_alerts", "ProjectSpendAlertListResource"),
        ("projects/proj_a/spend_alerts/alert_a", "ProjectSpendAlert"),
        ("projects/proj_a/data_retention", "ProjectDataRetention"),
        ("projects/proj_a/model_permissions", "ProjectModelPermissions"),
    ],
)
async def test_the_admin_routes_match_the_document(
    document: dict[str, Any], admin_client: httpx.AsyncClient, path: str, name: str
) -> None:
    answer = await admin_client.get(f"/v1/organization/{path}")
    assert answer.status_code == 200, answer.text
    validator(document, name).validate(answer.json())


_ADMIN_ACTOR = AuditActor(
    type="api_key",
    api_key_id="key_admin",
    api_key_type="admin",
    user_id="user_a",
    ip_address="10.0.0.1",
)
_PROJECT_ACTOR = AuditActor(
    type="api_key",
    api_key_id="key_svc",
    api_key_type="service_account",
    service_account_id="svc_acct_a",
)


@pytest.mark.parametrize(
    "event",
    [
        AuditEvent(
            type="project.created",
            actor=_ADMIN_ACTOR,
            project_id="proj_a",
            project_name="A",
            target_id="proj_a",
            details={"name": "A"},
        ),
        AuditEvent(
            type="rate_limit.updated",
            actor=_PROJECT_ACTOR,
            project_id="proj_a",
            target_id="rl-openai__gpt-4o-mini",
            details={"model": "openai/gpt-4o-mini", "max_requests_per_1_minute": None},
        ),
        AuditEvent(
            type="request.denied",
            actor=_PROJECT_ACTOR,
            project_id="proj_a",
            outcome="denied",
            error_code="rate_limited",
            details={"reason": "rate_limited", "message": "Rate limit reached."},
        ),
        AuditEvent(type="spend_alert.triggered", actor=AuditActor.system(), target_id="alert_a"),
        AuditEvent(
            type="credit.granted",
            actor=_ADMIN_ACTOR,
            project_id="proj_a",
            target_id="grant_1",
            details={"amount_usd": "10"},
        ),
    ],
    ids=lambda event: event.type,
)
def test_a_rendered_audit_log_matches_the_document(
    document: dict[str, Any], event: AuditEvent
) -> None:
    # Metering renders it; the ingress passes it on unchanged.
    body = render_list(AuditPage(events=[event], has_more=False))
    validator(document, "ListAuditLogsResponse").validate(body)
