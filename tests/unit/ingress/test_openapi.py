"""The served OpenAPI document: its schemas are OpenAI's (regenerated and compared), its paths
are the routes the app serves, and what the ingress renders validates against it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
import yaml
from fastapi.routing import APIRoute
from schemathesis.core.result import Ok
from starlette.routing import BaseRoute

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
from services.ingress.app import create_app
from services.ingress.openapi import (
    DROPPED_VARIANTS,
    REQUEST_PROPERTIES,
    SCHEMAS_FILE,
    build_openapi,
    openapi_document,
    trim_openai_schemas,
)
from services.ingress.protocols.openai_chat import ChunkRenderer, render_completion, render_error
from services.ingress.settings import IngressSettings
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


def api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        # FastAPI keeps an included router (all of ours are included without a prefix) whole.
        elif (router := getattr(route, "original_router", None)) is not None:
            yield from api_routes(router.routes)


async def test_the_document_describes_every_served_route_and_no_other(
    document: dict[str, Any],
) -> None:
    app = create_app(IngressSettings(admin_key=ADMIN_KEY))
    served = {
        (route.path.replace("{model_id:path}", "{model}"), method.lower())
        for route in api_routes(app.routes)
        if route.include_in_schema
        for method in route.methods or ()
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
    }
    assert document["components"]["securitySchemes"] == {
        "ApiKeyAuth": {"type": "http", "scheme": "bearer"}
    }


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
