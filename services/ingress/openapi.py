"""The ingress's OpenAPI document, served at ``GET /openapi.json``.

The paths are written by hand, to say exactly what the ingress serves: here, and the Admin
API's in ``openapi_admin``. The schemas of the request and response bodies are OpenAI's own,
taken from OpenAI's published OpenAPI document and trimmed to what the ingress honours
(``trim_openai_schemas``: ``_ROOTS``, the schemas the Admin API cites, and what they refer to);
the result is kept beside this module in ``openapi_schemas.json``, so serving the document needs
nothing outside the package. What Switchyard adds to them is added as the document is built.
A unit test regenerates the schemas from ``shared/specs/openai-openapi.yaml`` and compares, so
the two cannot drift apart. To refresh them after OpenAI's document changes::

    .local/venv/bin/python -m services.ingress.openapi ../shared/specs/openai-openapi.yaml
"""

from __future__ import annotations

import copy
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from services.ingress.openapi_admin import (
    SWITCHYARD_FIELDS,
    SWITCHYARD_SCHEMAS,
    admin_paths,
    with_switchyard_schemas,
)

SCHEMAS_FILE = Path(__file__).with_name("openapi_schemas.json")

# The request parameters the ingress reads (services/ingress/protocols/openai_chat). Every other
# parameter of OpenAI's request is left out of the document: the ingress ignores it.
REQUEST_PROPERTIES = (
    "model",
    "messages",
    "stream",
    "stream_options",
    "store",
    "n",
    "logprobs",
    "top_logprobs",
    "modalities",
    "audio",
    "logit_bias",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "reasoning_effort",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "metadata",
    "user",
)
# Variants of OpenAI's unions the ingress refuses outright; they are removed from every union.
# (Refused *values* of a kept parameter, such as ``n`` > 1 or audio output, stay in the schema:
# the document would otherwise have to restate OpenAI's schemas instead of citing them.)
DROPPED_VARIANTS = frozenset(
    {
        "ChatCompletionRequestMessageContentPartAudio",
        "ChatCompletionRequestMessageContentPartFile",
        "CustomToolChatCompletions",
        "ChatCompletionAllowedToolsChoice",
        "ChatCompletionNamedToolChoiceCustom",
        "ChatCompletionMessageCustomToolCall",
    }
)
_ROOTS = (
    "CreateChatCompletionRequest",
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "ListModelsResponse",
    "Model",
    "ErrorResponse",
)
_REF = "#/components/schemas/"


def _admin_roots() -> list[str]:
    """OpenAI's schemas the Admin API cites (``services.ingress.openapi_admin``): those its
    operations and Switchyard's schemas refer to, and those Switchyard adds fields to."""
    cited = _refs(admin_paths()) | _refs(SWITCHYARD_SCHEMAS) | set(SWITCHYARD_FIELDS)
    return sorted(cited - set(SWITCHYARD_SCHEMAS))


def trim_openai_schemas(openai_spec: dict[str, Any]) -> dict[str, Any]:
    """The component schemas the document needs, from OpenAI's OpenAPI document ``openai_spec``:
    the bodies of the served operations and everything they reference, with the request reduced
    to ``REQUEST_PROPERTIES`` and the unions to the variants the ingress accepts."""
    source: dict[str, Any] = openai_spec["components"]["schemas"]
    request = _flatten(source, "CreateChatCompletionRequest")
    request["properties"] = {
        name: schema for name, schema in request["properties"].items() if name in REQUEST_PROPERTIES
    }
    kept: dict[str, Any] = {"CreateChatCompletionRequest": _without_dropped(request)}
    pending = [name for name in (*_ROOTS, *_admin_roots()) if name not in kept]
    pending += sorted(_refs(kept["CreateChatCompletionRequest"]))
    while pending:
        name = pending.pop()
        if name in kept:
            continue
        kept[name] = _without_dropped(copy.deepcopy(source[name]))
        pending += sorted(_refs(kept[name]) - kept.keys())
    return dict(sorted(kept.items()))


def _flatten(source: dict[str, Any], name: str) -> dict[str, Any]:
    """``name`` with its ``allOf`` chain of object schemas merged into one object schema."""
    schema = copy.deepcopy(source[name])
    merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    for part in schema.pop("allOf", []):
        inner = _flatten(source, part["$ref"].removeprefix(_REF)) if "$ref" in part else part
        merged["properties"].update(inner.get("properties", {}))
        merged["required"] += [r for r in inner.get("required", []) if r not in merged["required"]]
    merged["properties"].update(schema.pop("properties", {}))
    merged["required"] += [r for r in schema.pop("required", []) if r not in merged["required"]]
    schema.pop("type", None)
    return {**merged, **schema}


def _without_dropped(node: Any) -> Any:
    """``node`` without the ``DROPPED_VARIANTS``, and with OpenAPI 3.0's ``nullable`` (which
    OpenAI's 3.1 document still uses in places, and 3.1 tools ignore) spelt the 3.1 way."""
    if isinstance(node, list):
        return [_without_dropped(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _without_dropped(value) for key, value in node.items()}
    for union in ("oneOf", "anyOf"):
        if union in out:
            out[union] = [
                variant
                for variant in out[union]
                if variant.get("$ref", "").removeprefix(_REF) not in DROPPED_VARIANTS
            ]
    mapping = out.get("discriminator", {}).get("mapping")
    if mapping:
        out["discriminator"]["mapping"] = {
            key: ref
            for key, ref in mapping.items()
            if ref.removeprefix(_REF) not in DROPPED_VARIANTS
        }
    if out.pop("nullable", False):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return {name for item in node for name in _refs(item)}
    if not isinstance(node, dict):
        return set()
    found = {name for value in node.values() for name in _refs(value)}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF):
        found.add(ref.removeprefix(_REF))
    return found


# ---- the document ------------------------------------------------------------------------------


def _schema(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _schema(name)}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json("ErrorResponse")}


_AUTH_ERRORS = {"401": _error("No API key, or an unknown one.")}
_KEYS = (
    "An API key, as `Authorization: Bearer <key>` (or `x-api-key: <key>`). Organization keys: "
    "the bootstrap admin key (`SWITCHYARD_ADMIN_KEY`), which acts as the organization's owner, "
    "and admin API keys (`sk-sy-admin-...`), which act with their person's organization and "
    "project roles (as the owner when they have no person) and may not call models. Project "
    "keys (`sk-sy-proj-...`), held by a service account or a person in a project, act in that "
    "project only, with their holder's role there. A role is a fixed set of permissions "
    "(`GET /v1/organization/roles`); each Admin API operation names the permission it needs. "
    "One needed in the project is granted by an organization role or by a role in that "
    "project; one needed in the organization only by an organization role."
)
# OpenAI's rate limit headers, sent when the project limits the model asked for.
_RATE_LIMIT_HEADERS = {
    f"x-ratelimit-{figure}-{kind}": {"schema": {"type": "string"}, "description": description}
    for kind in ("requests", "tokens")
    for figure, description in (
        ("limit", f"The project's limit of {kind} per minute on the model."),
        ("remaining", f"The {kind} left in the current minute."),
        ("reset", "How long until the limit is whole again, e.g. `1500ms`."),
    )
}
_HEALTH = {
    "type": "object",
    "required": ["ok", "parts"],
    "properties": {
        "ok": {"type": "boolean"},
        "parts": {
            "type": "object",
            "required": ["kafka", "redis", "inbox"],
            "properties": {
                "kafka": {"type": "boolean"},
                "redis": {"type": "boolean"},
                "inbox": {"type": "boolean"},
            },
        },
    },
}


_PROVIDERS_LIST = {
    "type": "object",
    "required": ["object", "window_minutes", "data"],
    "properties": {
        "object": {"type": "string", "enum": ["list"]},
        "window_minutes": {"type": "integer"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "object", "replicas", "circuit", "capacity", "models"],
                "properties": {
                    "id": {"type": "string"},
                    "object": {"type": "string", "enum": ["provider"]},
                    "replicas": {"type": "array", "items": {"type": "object"}},
                    "circuit": {"type": "object"},
                    "capacity": {"type": "object"},
                    "open_circuits": {"type": "array", "items": {"type": "string"}},
                    "models": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
    },
}

# Ours, beside OpenAI's parameters: OpenRouter's fallback list.
_MODELS_PARAMETER = {
    "type": "array",
    "items": {"type": "string"},
    "minItems": 1,
    "maxItems": 10,
    "description": (
        "Switchyard: models to try in order when the one before fails (after `model`, which "
        "may be omitted when this is given)."
    ),
}


def _with_fallback_list(schemas: dict[str, Any]) -> dict[str, Any]:
    request = schemas.get("CreateChatCompletionRequest")
    if not isinstance(request, dict) or "properties" not in request:
        return schemas
    properties = {**request["properties"], "models": _MODELS_PARAMETER}
    return {**schemas, "CreateChatCompletionRequest": {**request, "properties": properties}}


def build_openapi(schemas: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document of the ingress, around the component ``schemas``."""
    schemas = with_switchyard_schemas(_with_fallback_list(schemas))
    chat_responses = {
        "200": {
            "description": "The completion; a stream of chunks when the request set `stream`.",
            "content": {
                **_json("CreateChatCompletionResponse"),
                "text/event-stream": {"schema": _schema("CreateChatCompletionStreamResponse")},
            },
            "headers": {
                "x-request-id": {"schema": {"type": "string"}},
                "x-switchyard-provider": {"schema": {"type": "string"}},
                "x-switchyard-model": {"schema": {"type": "string"}},
                "x-switchyard-simulated": {"schema": {"type": "string", "enum": ["true"]}},
                "x-switchyard-attempts": {"schema": {"type": "string"}},
                "x-switchyard-route": {"schema": {"type": "string"}},
                "x-switchyard-task": {"schema": {"type": "string"}},
                **_RATE_LIMIT_HEADERS,
            },
        },
        "400": _error("The request is malformed, or asks for something this router refuses."),
        **_AUTH_ERRORS,
        "402": _error(
            "`insufficient_quota`: the project's prepaid credit cannot cover the request's "
            "maximum cost, or the request would pass the project's monthly spend limit."
        ),
        "403": _error(
            "The key may not call models (it needs `api.model.request`; admin API keys never "
            "may), or the project's model permissions forbid the model."
        ),
        "404": _error("The model is not in the catalogue."),
        "413": _error("The request body is larger than the limit."),
        "429": {
            **_error(
                "Over one of the project's rate limits on the model (code `rate_limited`), or "
                "the vendor is rate limiting (code `vendor_rate_limited`)."
            ),
            "headers": {
                "retry-after": {
                    "schema": {"type": "string"},
                    "description": "Seconds until the request would fit.",
                },
                **_RATE_LIMIT_HEADERS,
            },
        },
        "502": _error("The vendor failed or answered with something unusable."),
        "503": _error("The vendor or a part of Switchyard is unavailable."),
        "504": _error("The model did not answer in time."),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Switchyard",
            "version": "0.1.0",
            "description": (
                "An OpenAI-compatible AI model router. Request and response bodies are OpenAI's "
                "own schemas, trimmed to the parameters this router honours; a parameter value "
                "it cannot honour (`n` > 1, audio output, ...) is refused with a 400. What "
                "Switchyard adds is marked so: fields described `Switchyard: ...`, and schemas "
                "named `Switchyard...`."
            ),
        },
        "security": [{"ApiKeyAuth": []}],
        "paths": {
            "/v1/chat/completions": {
                "post": {
                    "operationId": "createChatCompletion",
                    "summary": "Creates a model response for the given chat conversation.",
                    "requestBody": {
                        "required": True,
                        "content": _json("CreateChatCompletionRequest"),
                    },
                    "responses": chat_responses,
                }
            },
            "/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "summary": "Lists the models of the catalogue.",
                    "responses": {
                        "200": {"description": "OK", "content": _json("ListModelsResponse")},
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/v1/models/{model}": {
                "get": {
                    "operationId": "retrieveModel",
                    "summary": "Retrieves a model by id, `provider/model` id or alias.",
                    "parameters": [
                        {
                            "in": "path",
                            "name": "model",
                            "required": True,
                            "schema": {"type": "string"},
                            "description": "The model to retrieve, e.g. `openai/gpt-4o-mini`.",
                        }
                    ],
                    "responses": {
                        "200": {"description": "OK", "content": _json("Model")},
                        **_AUTH_ERRORS,
                        "404": _error("The model is not in the catalogue."),
                    },
                }
            },
            "/v1/providers": {
                "get": {
                    "operationId": "listProviders",
                    "summary": (
                        "Switchyard: each provider's replicas, capacity and circuits, and its "
                        "recently used models' health (the organization's owner: needs "
                        "`api.organization.write`)."
                    ),
                    "parameters": [
                        {
                            "in": "query",
                            "name": "provider",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "Only this provider.",
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"application/json": {"schema": _PROVIDERS_LIST}},
                        },
                        "400": _error("An unknown provider."),
                        **_AUTH_ERRORS,
                        "403": _error("Not the organization's owner."),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether this ingress process can serve.",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Every part is up.",
                            "content": {"application/json": {"schema": _HEALTH}},
                        },
                        "503": {
                            "description": "A part is down.",
                            "content": {"application/json": {"schema": _HEALTH}},
                        },
                    },
                }
            },
            **admin_paths(),
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics of this ingress process.",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Prometheus' text format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "ApiKeyAuth": {"type": "http", "scheme": "bearer", "description": _KEYS}
            },
            "schemas": schemas,
        },
    }


@cache
def openapi_document() -> bytes:
    """The served document, serialised once per process. The stdlib reads and writes it, not
    orjson: OpenAI's schemas hold integers (the bounds of ``seed``) past orjson's 64 bits."""
    schemas = json.loads(SCHEMAS_FILE.read_text(encoding="utf-8"))
    return json.dumps(build_openapi(schemas), ensure_ascii=False).encode()


router = APIRouter()


@router.get("/openapi.json", include_in_schema=False)
async def openapi_json() -> Response:
    return Response(openapi_document(), media_type="application/json")


def _main(argv: list[str]) -> None:
    import yaml  # only to refresh the schemas, not to serve

    (spec_path,) = argv
    with open(spec_path, encoding="utf-8") as spec_file:
        spec = yaml.load(spec_file, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    text = json.dumps(trim_openai_schemas(spec), indent=1, ensure_ascii=False) + "\n"
    SCHEMAS_FILE.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    _main(sys.argv[1:])
