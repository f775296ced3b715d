"""The Admin API's part of the ingress's OpenAPI document: ``/v1/organization/...``, as served by
``services.ingress.routes.organization``.

Each operation has OpenAI's ``operationId`` and cites OpenAI's schemas where OpenAI has the
operation; ``services.ingress.openapi`` trims every schema cited here into the document. What
Switchyard adds is kept apart and named so:

- ``SWITCHYARD_SCHEMAS``: the bodies of Switchyard's own operations (people added without an
  invitation, keys held by a person, prepaid credit, ...) and of its webhook alert channel;
- ``SWITCHYARD_FIELDS``: fields Switchyard adds to OpenAI's objects, reads differently, or
  leaves out (a field it would ignore, as the chat request leaves out what the ingress ignores);
- its audit event types, beside OpenAI's in ``AuditLogEventType``.

Every operation's description names the permission it needs (``services.common.access``).
"""

from __future__ import annotations

import copy
from typing import Any

from contracts.audit import SWITCHYARD_EVENT_TYPES
from services.common.access import ROLES, Permission, Scope

_REF = "#/components/schemas/"
_BASE = "/v1/organization"
# As the routes bound them (routes/organization/_shared.py, controls.py, money.py).
_MAX_NAME = 256
_MAX_KEY_LIFETIME_S = 365 * 24 * 3600
_MAX_LIMIT_VALUE = 10**12
_ENFORCED_LIMITS = (
    "max_requests_per_1_minute",
    "max_tokens_per_1_minute",
    "max_requests_per_1_day",
)
_MAX_RETENTION_DAYS = 3650
_ORG_ROLES = [role.name for role in ROLES.values() if role.scope is Scope.ORGANIZATION]
_PROJECT_ROLES = [role.name for role in ROLES.values() if role.scope is Scope.PROJECT]

# Where a permission must be held: "in the project" is granted by an organisation role or by a
# role in that project; "in the organization" only by an organisation role.
_IN_PROJECT = "in the project"
_IN_ORG = "in the organization"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(schema: str | dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(schema) if isinstance(schema, str) else schema}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json("ErrorResponse")}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _needs(permission: Permission, where: str = _IN_PROJECT) -> str:
    return f"Needs `{permission.value}` {where}."


# ---- Switchyard's own schemas ----------------------------------------------------------------

_UNIXTIME = {"type": "integer", "format": "unixtime"}
_USD = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
    "description": "US dollars, as a decimal string.",
}
_EXPIRES_IN_SECONDS = _nullable(
    {
        "type": "integer",
        "minimum": 1,
        "maximum": _MAX_KEY_LIFETIME_S,
        "description": (
            "Switchyard: seconds until the key expires (OpenAI's field for admin keys, taken "
            "for every key); omitted or null, it does not expire."
        ),
    }
)
_EXPIRES_AT = {
    **_nullable(_UNIXTIME),
    "description": "Switchyard: when the key expires; null, never.",
}
_NAME = _nullable({"type": "string", "minLength": 1, "maxLength": _MAX_NAME})

SWITCHYARD_SCHEMAS: dict[str, dict[str, Any]] = {
    "SwitchyardUserCreateRequest": {
        "type": "object",
        "description": (
            "Switchyard's addition: a person added to the organization directly (OpenAI invites "
            "by email, to be accepted in its dashboard)."
        ),
        "required": ["email"],
        "properties": {
            "email": {"type": "string", "maxLength": 320, "description": "Stored in lower case."},
            "name": _NAME,
            "role": {"type": "string", "enum": _ORG_ROLES, "default": "reader"},
        },
    },
    "SwitchyardProjectApiKeyCreateRequest": {
        "type": "object",
        "description": (
            "Switchyard's addition: a project key held by a person in the project, acting with "
            "their role in it."
        ),
        "properties": {
            "user_id": {
                "type": "string",
                "minLength": 1,
                "description": "The person holding the key; by default the caller's own.",
            },
            "name": {**_NAME, "description": "By default `<their email> key`."},
            "expires_in_seconds": _EXPIRES_IN_SECONDS,
        },
    },
    "SwitchyardProjectApiKeyCreateResponse": {
        "type": "object",
        "description": "Switchyard's addition: the new key, whose `value` is shown only here.",
        "required": ["object", "value", "name", "created_at", "id", "expires_at"],
        "properties": {
            "object": {"type": "string", "enum": ["organization.project.api_key"]},
            "value": {"type": "string"},
            "name": {"type": "string"},
            "created_at": _UNIXTIME,
            "id": {"type": "string"},
            "expires_at": _EXPIRES_AT,
        },
    },
    "SwitchyardProjectRateLimitDeleteResponse": {
        "type": "object",
        "description": "Switchyard's addition: the model is no longer limited by the project.",
        "required": ["object", "id", "deleted"],
        "properties": {
            "object": {"type": "string", "enum": ["project.rate_limit.deleted"]},
            "id": {"type": "string"},
            "deleted": {"type": "boolean"},
        },
    },
    "SwitchyardProjectCreditGrant": {
        "type": "object",
        "description": "Switchyard's addition: prepaid credit added to a project; never changed.",
        "required": ["object", "id", "amount", "currency", "note", "created_at"],
        "properties": {
            "object": {"type": "string", "enum": ["project.credit_grant"]},
            "id": {"type": "string"},
            "amount": _USD,
            "currency": {"type": "string", "enum": ["USD"]},
            "note": _nullable({"type": "string"}),
            "created_at": _UNIXTIME,
        },
    },
    "SwitchyardCreditGrantCreateRequest": {
        "type": "object",
        "description": "Switchyard's addition: a top-up of a project's prepaid credit.",
        "required": ["amount"],
        "properties": {
            "amount": {
                "description": "Dollars above 0 and at most 1000000, to six decimals at most.",
                "anyOf": [
                    {"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,6})?$"},
                    {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000},
                ],
            },
            "note": _nullable({"type": "string", "maxLength": 512}),
        },
    },
    "SwitchyardProjectCredit": {
        "type": "object",
        "description": (
            "Switchyard's addition: a project's prepaid credit. `available` is `granted` less "
            "`spent` (settled usage) less `held` (the maximum cost of requests still running). "
            "A project never granted credit is not prepaid (`prepaid` false): nothing stops it "
            "for want of credit."
        ),
        "required": [
            "object",
            "project_id",
            "currency",
            "prepaid",
            "granted",
            "spent",
            "held",
            "available",
            "month_spent",
            "grants",
        ],
        "properties": {
            "object": {"type": "string", "enum": ["project.credit"]},
            "project_id": {"type": "string"},
            "currency": {"type": "string", "enum": ["USD"]},
            "prepaid": {"type": "boolean"},
            "granted": _USD,
            "spent": _USD,
            "held": _USD,
            "available": _USD,
            "month_spent": {**_USD, "description": "Spent this calendar month (UTC)."},
            "grants": {"type": "array", "items": _ref("SwitchyardProjectCreditGrant")},
        },
    },
    "SwitchyardRequestLog": {
        "type": "object",
        "description": (
            "Switchyard's addition: one request of a project whose `data_retention` is `none`, "
            "kept until `expires_at`: the normalised request and the answer (the completion, or "
            "the list of a stream's deltas)."
        ),
        "required": ["object", "id", "created_at", "expires_at", "status", "request"],
        "properties": {
            "object": {"type": "string", "enum": ["project.request_log"]},
            "id": {"type": "string", "description": "The request id (`x-request-id`)."},
            "created_at": _UNIXTIME,
            "expires_at": _UNIXTIME,
            "key_id": {"type": "string"},
            "requested_model": {"type": "string"},
            "model": _nullable({"type": "string"}),
            "provider": _nullable({"type": "string"}),
            "status": {"type": "string", "enum": ["ok", "error"]},
            "error_code": _nullable({"type": "string"}),
            "attempts": {"type": "integer"},
            "stream": {"type": "boolean"},
            "request": {"type": "object"},
            "response": _nullable({}),
        },
    },
    "SwitchyardRequestLogList": {
        "type": "object",
        "description": "Switchyard's addition: a page of a project's request logs, newest first.",
        "required": ["object", "data", "first_id", "last_id", "has_more"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": _ref("SwitchyardRequestLog")},
            "first_id": _nullable({"type": "string"}),
            "last_id": _nullable({"type": "string"}),
            "has_more": {"type": "boolean"},
        },
    },
    "SwitchyardSpendAlertWebhookChannel": {
        "type": "object",
        "description": (
            "Switchyard's channel for spend alerts, in place of OpenAI's email: a `POST` of a "
            "JSON body to `url`, signed in `x-switchyard-signature: t=<unix time>,v1=<hex "
            'HMAC-SHA256 of "<t>.<body>" under the alert\'s signing secret>`.'
        ),
        "required": ["type", "url"],
        "properties": {
            "type": {"type": "string", "enum": ["webhook"]},
            "url": {
                "type": "string",
                "format": "uri",
                "pattern": "^https?://",
                "maxLength": 2048,
            },
        },
    },
    "SwitchyardProjectSpendAlertCreateResponse": {
        "description": (
            "The new alert, with the secret its webhook calls are signed with (Switchyard's "
            "addition), shown only here."
        ),
        "allOf": [
            _ref("ProjectSpendAlert"),
            {
                "type": "object",
                "required": ["signing_secret"],
                "properties": {"signing_secret": {"type": "string", "pattern": "^whsec_"}},
            },
        ],
    },
}

# Fields of OpenAI's schemas as Switchyard serves them: added, or replacing OpenAI's field of
# that name; None leaves OpenAI's field out (Switchyard ignores or refuses it).
SWITCHYARD_FIELDS: dict[str, dict[str, dict[str, Any] | None]] = {
    "ProjectCreateRequest": {"residency": None, "external_key_id": None},
    "ProjectUpdateRequest": {"external_key_id": None},
    "User": {
        "roles": {
            "type": "array",
            "items": {"type": "string", "enum": _ORG_ROLES},
            "description": (
                "Switchyard: every organization role the person holds (`role` says `owner` or "
                "`reader`, as OpenAI's does)."
            ),
        }
    },
    "UserRoleUpdateRequest": {
        "role": {
            "type": "string",
            "enum": _ORG_ROLES,
            "description": "Switchyard: required; replaces the person's organization roles.",
        },
        "role_id": None,
        "technical_level": None,
        "developer_persona": None,
    },
    "ProjectUserCreateRequest": {
        "role": {
            "type": "string",
            "enum": _PROJECT_ROLES,
            "description": "Switchyard's project roles (OpenAI's are `owner` and `member`).",
        },
    },
    "ProjectUserUpdateRequest": {
        "role": {
            "type": "string",
            "enum": _PROJECT_ROLES,
            "description": "Switchyard's project roles; required.",
        },
    },
    "ProjectServiceAccountCreateRequest": {
        "role": {
            "type": "string",
            "enum": ["member", "owner"],
            "default": "member",
            "description": "Switchyard: an `owner` may manage the project through this API.",
        },
        "expires_in_seconds": _EXPIRES_IN_SECONDS,
        "create_service_account_only": None,
    },
    "ProjectServiceAccountCreateResponse": {
        "role": {"type": "string", "enum": ["member", "owner"]},
    },
    "ProjectServiceAccountApiKey": {"expires_at": _EXPIRES_AT},
    "CreateProjectServiceAccountApiKeyBody": {
        "name": {**_NAME, "description": "By default `<account name> key`."},
        "expires_in_seconds": _EXPIRES_IN_SECONDS,
        "scopes": None,
    },
    "ServiceAccountApiKeyBody": {"expires_at": _EXPIRES_AT},
    "ProjectApiKey": {"expires_at": _EXPIRES_AT},
    "ProjectRateLimitUpdateRequest": {
        **{
            field: _nullable(
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": _MAX_LIMIT_VALUE,
                    "description": "Switchyard: null removes this limit; left out, it stays.",
                }
            )
            for field in _ENFORCED_LIMITS
        },
        # Not enforced by Switchyard: refused with a 400 rather than kept and ignored.
        "max_images_per_1_minute": None,
        "max_audio_megabytes_per_1_minute": None,
        "batch_1_day_max_input_tokens": None,
    },
    "ProjectDataRetention": {
        "retention_days": {
            "type": "integer",
            "description": "Switchyard: how long request logs are kept, for type `none`.",
        }
    },
    "UpdateProjectDataRetentionBody": {
        "retention_type": {
            "type": "string",
            "enum": [
                "organization_default",
                "none",
                "zero_data_retention",
                "enhanced_zero_data_retention",
            ],
            "description": (
                "Switchyard keeps request logs for `none` only; the other types keep nothing. "
                "OpenAI's abuse-monitoring programmes are not offered."
            ),
        },
        "retention_days": {
            "type": "integer",
            "minimum": 1,
            "maximum": _MAX_RETENTION_DAYS,
            "default": 30,
            "description": "Switchyard: how long request logs are kept, for type `none`.",
        },
    },
    "CreateSpendAlertBody": {"notification_channel": _ref("SwitchyardSpendAlertWebhookChannel")},
    "ProjectSpendAlert": {"notification_channel": _ref("SwitchyardSpendAlertWebhookChannel")},
    "AuditLog": {
        "rate_limit.updated": {
            "type": "object",
            "description": (
                "Switchyard: `changes_requested` also names the `model`, and holds null for a "
                "limit removed."
            ),
            "properties": {
                "id": {"type": "string", "description": "The rate limit's id."},
                "changes_requested": {
                    "type": "object",
                    "properties": {
                        "model": {"type": "string"},
                        **{field: _nullable({"type": "integer"}) for field in _ENFORCED_LIMITS},
                    },
                },
            },
        },
        "outcome": {
            "type": "string",
            "enum": ["success", "denied", "failure"],
            "description": "Switchyard: whether the action was done, refused, or failed.",
        },
        "error_code": {
            "type": "string",
            "description": "Switchyard: the error's `code` the caller got, when refused.",
        },
    },
    "AuditLogActorApiKey": {
        "ip_address": {"type": "string", "description": "Switchyard: the caller's address."},
        "user_agent": {"type": "string", "description": "Switchyard: the caller's user agent."},
    },
    "AuditLogActorSession": {
        "user_agent": {"type": "string", "description": "Switchyard: the caller's user agent."},
    },
}


def with_switchyard_schemas(schemas: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's component ``schemas`` as the Admin API serves them: with ``SWITCHYARD_FIELDS``,
    Switchyard's audit event types, and ``SWITCHYARD_SCHEMAS``. A schema named here must be
    among ``schemas``: OpenAI's document having dropped it is worth an error, not a silence."""
    out = {**schemas, **SWITCHYARD_SCHEMAS}
    for name, fields in SWITCHYARD_FIELDS.items():
        schema = copy.deepcopy(schemas[name])
        properties = schema.setdefault("properties", {})
        for field, value in fields.items():
            if value is None:
                properties.pop(field, None)
            else:
                properties[field] = value
        out[name] = schema
    event_type = copy.deepcopy(schemas["AuditLogEventType"])
    event_type["enum"] += sorted(SWITCHYARD_EVENT_TYPES - set(event_type["enum"]))
    event_type["description"] += " Switchyard adds its own: " + ", ".join(
        f"`{t}`" for t in sorted(SWITCHYARD_EVENT_TYPES)
    )
    out["AuditLogEventType"] = event_type
    return out


# ---- operations ------------------------------------------------------------------------------


def _parameter(
    name: str, where: str = "path", description: str | None = None, **schema: Any
) -> dict[str, Any]:
    parameter: dict[str, Any] = {
        "in": where,
        "name": name,
        "required": where == "path",
        "schema": schema or {"type": "string"},
    }
    if description is not None:
        parameter["description"] = description
    return parameter


_LIMIT = _parameter(
    "limit", "query", "How many objects.", type="integer", minimum=1, maximum=100, default=20
)
_PAGE = [
    _LIMIT,
    _parameter("after", "query", "An object's id: the page starts after it."),
]
_PROJECT = [_parameter("project_id", description="The project's id.")]
_MISSING_IN_PROJECT = "No such project, or nothing of that id in it."
_UNRECORDED = "The change could not be recorded right now; try again."


def _operation(
    operation_id: str,
    summary: str,
    response: str | dict[str, Any],
    *,
    needs: str,
    description: str = "",
    parameters: list[dict[str, Any]] | None = None,
    body: str | dict[str, Any] | None = None,
    missing: str = _MISSING_IN_PROJECT,
    writes: bool = False,
    unavailable: str | None = None,
) -> dict[str, Any]:
    """An Admin API operation: its 200 in ``response``, and OpenAI's error shape for the rest.
    One that ``writes`` records a change on the governance topic, and may answer 503 while it
    cannot (as may one with a reason it is ``unavailable``)."""
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": _json(response)},
        "400": _error("A malformed body or parameter."),
        "401": _error("No API key, or an unknown one."),
        "403": _error("The key lacks the permission this operation needs."),
        "404": _error(missing),
    }
    if body is not None:
        responses["413"] = _error("The request body is larger than the limit.")
    if writes or unavailable:
        responses["503"] = _error(unavailable or _UNRECORDED)
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "description": f"{description} {needs}".strip(),
        "parameters": parameters or [],
        "responses": responses,
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json(body)}
    return operation


def admin_paths() -> dict[str, Any]:
    """Every operation of ``services.ingress.routes.organization``, by path."""
    return {
        **_project_paths(),
        **_key_paths(),
        **_people_paths(),
        **_control_paths(),
        **_money_paths(),
        **_audit_paths(),
        **_usage_paths(),
    }


def _project_paths() -> dict[str, Any]:
    base = _BASE + "/projects"
    read, write = Permission.PROJECT_READ, Permission.PROJECT_WRITE
    return {
        base: {
            "get": _operation(
                "list-projects",
                "Lists projects, oldest first.",
                "ProjectListResponse",
                missing="Not found.",
                needs=(
                    f"Needs `{read.value}`: in the organization to list every project, or in a "
                    "project to list the projects where the key holds it."
                ),
                parameters=[
                    *_PAGE,
                    _parameter(
                        "include_archived",
                        "query",
                        "Archived projects too.",
                        type="boolean",
                        default=False,
                    ),
                ],
            ),
            "post": _operation(
                "create-project",
                "Creates a project.",
                "Project",
                needs=_needs(Permission.ORG_WRITE, _IN_ORG),
                body="ProjectCreateRequest",
                missing="Not found.",
                writes=True,
            ),
        },
        base + "/{project_id}": {
            "get": _operation(
                "retrieve-project",
                "Retrieves a project.",
                "Project",
                needs=_needs(read),
                parameters=_PROJECT,
                missing="No such project.",
            ),
            "post": _operation(
                "modify-project",
                "Renames a project.",
                "Project",
                needs=_needs(write),
                description="An archived project cannot be changed (400).",
                parameters=_PROJECT,
                body="ProjectUpdateRequest",
                missing="No such project.",
                writes=True,
            ),
        },
        base + "/{project_id}/archive": {
            "post": _operation(
                "archive-project",
                "Archives a project; its keys stop working at once.",
                "Project",
                needs=_needs(Permission.ORG_WRITE, _IN_ORG),
                parameters=_PROJECT,
                missing="No such project.",
                writes=True,
            )
        },
    }


def _key_paths() -> dict[str, Any]:
    base = _BASE + "/projects/{project_id}"
    read, write = Permission.PROJECT_READ, Permission.PROJECT_WRITE
    account = [*_PROJECT, _parameter("service_account_id", description="The account's id.")]
    key = [*_PROJECT, _parameter("api_key_id", description="The key's id.")]
    admin_key = [_parameter("key_id", description="The admin API key's id.")]
    return {
        base + "/service_accounts": {
            "get": _operation(
                "list-project-service-accounts",
                "Lists a project's service accounts, oldest first.",
                "ProjectServiceAccountListResponse",
                needs=_needs(read),
                parameters=[*_PROJECT, *_PAGE],
            ),
            "post": _operation(
                "create-project-service-account",
                "Creates a service account and its API key, whose value is shown only here.",
                "ProjectServiceAccountCreateResponse",
                needs=_needs(write),
                description=(
                    "Switchyard also takes the account's `role` (`member` or `owner`) and the "
                    "key's `expires_in_seconds`."
                ),
                parameters=_PROJECT,
                body="ProjectServiceAccountCreateRequest",
                writes=True,
            ),
        },
        base + "/service_accounts/{service_account_id}": {
            "get": _operation(
                "retrieve-project-service-account",
                "Retrieves a service account.",
                "ProjectServiceAccount",
                needs=_needs(read),
                parameters=account,
            ),
            "delete": _operation(
                "delete-project-service-account",
                "Deletes a service account and its keys.",
                "ProjectServiceAccountDeleteResponse",
                needs=_needs(write),
                parameters=account,
                writes=True,
            ),
        },
        base + "/service_accounts/{service_account_id}/api_keys": {
            "post": _operation(
                "CreateanAPIkeyforaserviceaccount",
                "Creates another API key for a service account; its value is shown only here.",
                "ServiceAccountApiKeyBody",
                needs=_needs(write),
                description="Switchyard also takes `expires_in_seconds`.",
                parameters=account,
                body="CreateProjectServiceAccountApiKeyBody",
                writes=True,
            )
        },
        base + "/api_keys": {
            "get": _operation(
                "list-project-api-keys",
                "Lists a project's API keys, redacted, oldest first.",
                "ProjectApiKeyListResponse",
                needs=_needs(read),
                parameters=[*_PROJECT, *_PAGE],
            ),
            "post": _operation(
                "create-project-api-key",
                "Creates a project key held by a person in the project.",
                "SwitchyardProjectApiKeyCreateResponse",
                needs=(
                    f"Needs `{read.value}` in the project for one's own key, and "
                    f"`{write.value}` there for another person's."
                ),
                description=(
                    "Switchyard's addition (OpenAI's people make their keys in its dashboard): "
                    "the key acts with its holder's role in the project, and stops working when "
                    "they leave it. Its value is shown only here."
                ),
                parameters=_PROJECT,
                body="SwitchyardProjectApiKeyCreateRequest",
                writes=True,
            ),
        },
        base + "/api_keys/{api_key_id}": {
            "get": _operation(
                "retrieve-project-api-key",
                "Retrieves an API key, redacted.",
                "ProjectApiKey",
                needs=_needs(read),
                parameters=key,
            ),
            "delete": _operation(
                "delete-project-api-key",
                "Deletes an API key; it stops working at once.",
                "ProjectApiKeyDeleteResponse",
                needs=(
                    f"Needs `{read.value}` in the project for a key one holds oneself, and "
                    f"`{write.value}` there for any other."
                ),
                parameters=key,
                writes=True,
            ),
        },
        _BASE + "/admin_api_keys": {
            "get": _operation(
                "admin-api-keys-list",
                "Lists the organization's admin API keys, redacted, oldest first.",
                "ApiKeyList",
                needs=_needs(Permission.ORG_WRITE, _IN_ORG),
                parameters=_PAGE,
                missing="Not found.",
            ),
            "post": _operation(
                "admin-api-keys-create",
                "Creates an admin API key; its value is shown only here.",
                "AdminApiKeyCreateResponse",
                needs=_needs(Permission.ORG_WRITE, _IN_ORG),
                description=(
                    "The key acts with its person's organization and project roles; one without "
                    "a person (its `owner` then has `type` `organization`) acts as the "
                    "organization's owner. Admin API keys may not call models."
                ),
                body={
                    "type": "object",
                    "description": "OpenAI's body, with Switchyard's `user_id`.",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": _MAX_NAME},
                        "expires_in_seconds": _EXPIRES_IN_SECONDS,
                        "user_id": _nullable(
                            {
                                "type": "string",
                                "description": (
                                    "Switchyard: the person whose roles the key acts with; by "
                                    "default the caller's own person, if any. Null: none."
                                ),
                            }
                        ),
                    },
                },
                missing="Not found.",
                writes=True,
            ),
        },
        _BASE + "/admin_api_keys/{key_id}": {
            "get": _operation(
                "admin-api-keys-get",
                "Retrieves an admin API key, redacted.",
                "AdminApiKey",
                needs=(
                    f"Needs `{Permission.ORG_WRITE.value}` {_IN_ORG}, unless the key is the "
                    "caller's person's own."
                ),
                parameters=admin_key,
                missing="No such admin API key.",
            ),
            "delete": _operation(
                "admin-api-keys-delete",
                "Deletes an admin API key; it stops working at once.",
                {
                    "type": "object",
                    "description": "OpenAI's answer.",
                    "required": ["id", "object", "deleted"],
                    "properties": {
                        "id": {"type": "string"},
                        "object": {
                            "type": "string",
                            "enum": ["organization.admin_api_key.deleted"],
                        },
                        "deleted": {"type": "boolean"},
                    },
                },
                needs=(
                    f"Needs `{Permission.ORG_WRITE.value}` {_IN_ORG}, unless the key is the "
                    "caller's person's own."
                ),
                parameters=admin_key,
                missing="No such admin API key.",
                writes=True,
            ),
        },
    }


def _people_paths() -> dict[str, Any]:
    org_read, org_write = Permission.ORG_READ, Permission.ORG_WRITE
    read, write = Permission.PROJECT_READ, Permission.PROJECT_WRITE
    user = [_parameter("user_id", description="The person's id.")]
    role = [_parameter("role_id", description="The role's id, e.g. `role_org_reader`.")]
    members = _BASE + "/projects/{project_id}/users"
    member = [*_PROJECT, *user]
    own_or_read = f"Needs `{org_read.value}` {_IN_ORG}, unless it is the caller's own person."
    roles = "`" + "`, `".join(_ORG_ROLES) + "`"
    project_roles = "`" + "`, `".join(_PROJECT_ROLES) + "`"
    return {
        _BASE + "/users": {
            "get": _operation(
                "list-users",
                "Lists the organization's people, oldest first.",
                "UserListResponse",
                needs=_needs(org_read, _IN_ORG),
                parameters=[
                    *_PAGE,
                    _parameter(
                        "emails",
                        "query",
                        "Only the people with these email addresses.",
                        type="array",
                        items={"type": "string"},
                    ),
                ],
                missing="Not found.",
            ),
            "post": _operation(
                "create-user",
                "Adds a person to the organization.",
                "User",
                needs=_needs(org_write, _IN_ORG),
                description=(
                    "Switchyard's addition: OpenAI invites people by email, to accept in its "
                    f"dashboard; Switchyard has none, so adds them directly, with one of {roles} "
                    "(`reader` by default). An email already in the organization is a 400."
                ),
                body="SwitchyardUserCreateRequest",
                missing="Not found.",
                writes=True,
            ),
        },
        _BASE + "/users/{user_id}": {
            "get": _operation(
                "retrieve-user",
                "Retrieves a person.",
                "User",
                needs=own_or_read,
                parameters=user,
                missing="No such user.",
            ),
            "post": _operation(
                "modify-user",
                "Sets a person's organization role.",
                "User",
                needs=_needs(org_write, _IN_ORG),
                description=f"`role`, one of {roles}, replaces every role the person held.",
                parameters=user,
                body="UserRoleUpdateRequest",
                missing="No such user.",
                writes=True,
            ),
            "delete": _operation(
                "delete-user",
                "Removes a person from the organization, with their memberships and keys.",
                "UserDeleteResponse",
                needs=_needs(org_write, _IN_ORG),
                parameters=user,
                missing="No such user.",
                writes=True,
            ),
        },
        _BASE + "/roles": {
            "get": _operation(
                "list-roles",
                "Lists the predefined roles, of the organization and of projects.",
                "PublicRoleListResource",
                needs=_needs(org_read, _IN_ORG),
                description="Custom roles are not offered; every role is in one page.",
                missing="Not found.",
            )
        },
        _BASE + "/roles/{role_id}": {
            "get": _operation(
                "retrieve-role",
                "Retrieves a predefined role.",
                "Role",
                needs=_needs(org_read, _IN_ORG),
                parameters=role,
                missing="No such role.",
            )
        },
        _BASE + "/users/{user_id}/roles": {
            "get": _operation(
                "list-user-role-assignments",
                "Lists a person's organization roles.",
                "RoleListResource",
                needs=own_or_read,
                description="Every role is in one page.",
                parameters=user,
                missing="No such user.",
            ),
            "post": _operation(
                "assign-user-role",
                "Gives a person an organization role as well as those they hold.",
                "UserRoleAssignment",
                needs=_needs(org_write, _IN_ORG),
                parameters=user,
                body="PublicAssignOrganizationGroupRoleBody",
                missing="No such user, or no such organization role.",
                writes=True,
            ),
        },
        _BASE + "/users/{user_id}/roles/{role_id}": {
            "delete": _operation(
                "unassign-user-role",
                "Takes an organization role from a person.",
                "DeletedRoleAssignmentResource",
                needs=_needs(org_write, _IN_ORG),
                description="A person keeps at least one organization role (400).",
                parameters=[*user, *role],
                missing="No such user, or the person does not hold the role.",
                writes=True,
            )
        },
        members: {
            "get": _operation(
                "list-project-users",
                "Lists the people in a project, oldest first.",
                "ProjectUserListResponse",
                needs=_needs(read),
                parameters=[*_PROJECT, *_PAGE],
            ),
            "post": _operation(
                "create-project-user",
                "Adds a person of the organization to a project.",
                "ProjectUser",
                needs=_needs(write),
                description=f"With one of the project roles {project_roles}.",
                parameters=_PROJECT,
                body="ProjectUserCreateRequest",
                writes=True,
            ),
        },
        members + "/{user_id}": {
            "get": _operation(
                "retrieve-project-user",
                "Retrieves a person in a project.",
                "ProjectUser",
                needs=_needs(read),
                parameters=member,
            ),
            "post": _operation(
                "modify-project-user",
                "Sets a person's role in a project.",
                "ProjectUser",
                needs=_needs(write),
                description=f"One of {project_roles}.",
                parameters=member,
                body="ProjectUserUpdateRequest",
                writes=True,
            ),
            "delete": _operation(
                "delete-project-user",
                "Removes a person from a project, with the keys they held in it.",
                "ProjectUserDeleteResponse",
                needs=_needs(write),
                parameters=member,
                writes=True,
            ),
        },
    }


def _control_paths() -> dict[str, Any]:
    base = _BASE + "/projects/{project_id}"
    read = Permission.PROJECT_READ
    limit = [
        *_PROJECT,
        _parameter(
            "rate_limit_id",
            description=(
                "`rl-` and the model's canonical id with its `/` spelt `__`, e.g. "
                "`rl-openai__gpt-4o-mini`."
            ),
        ),
    ]
    return {
        base + "/model_permissions": {
            "get": _operation(
                "retrieve-project-model-permissions",
                "The models the project may use (an empty deny list when none are set).",
                "ProjectModelPermissions",
                needs=_needs(read),
                parameters=_PROJECT,
                missing="No such project.",
            ),
            "post": _operation(
                "update-project-model-permissions",
                "Sets an allow list or a deny list; ids are stored as `provider/model`.",
                "ProjectModelPermissions",
                needs=_needs(Permission.POLICY_WRITE, _IN_ORG),
                description="A model that is not in the catalogue is a 404.",
                parameters=_PROJECT,
                body="ProjectModelPermissionsUpdateRequest",
                missing="No such project, or a model that is not in the catalogue.",
                writes=True,
            ),
            "delete": _operation(
                "delete-project-model-permissions",
                "Removes the list: every model again.",
                "ProjectModelPermissionsDeleteResponse",
                needs=_needs(Permission.POLICY_WRITE, _IN_ORG),
                parameters=_PROJECT,
                missing="No such project.",
                writes=True,
            ),
        },
        base + "/rate_limits": {
            "get": _operation(
                "list-project-rate-limits",
                "Lists the project's rate limits per model, by model.",
                "ProjectRateLimitListResponse",
                needs=_needs(read),
                description=(
                    "Only the limits set: a model without one is not limited by the project. "
                    "`0` in a required figure means that figure is not limited."
                ),
                parameters=[*_PROJECT, *_PAGE],
                missing="No such project.",
            )
        },
        base + "/rate_limits/{rate_limit_id}": {
            "post": _operation(
                "update-project-rate-limits",
                "Sets the project's rate limits on a model of the catalogue.",
                "ProjectRateLimit",
                needs=_needs(Permission.POLICY_WRITE, _IN_ORG),
                description=(
                    "Requests and tokens per minute and requests per day; a field sent as null "
                    "removes that limit (Switchyard's addition), one left out keeps its value. "
                    "OpenAI's image, audio and batch limits are not enforced and refused (400)."
                ),
                parameters=limit,
                body="ProjectRateLimitUpdateRequest",
                missing="No such project, or no such model.",
                writes=True,
            ),
            "delete": _operation(
                "delete-project-rate-limit",
                "Removes the project's rate limits on a model.",
                "SwitchyardProjectRateLimitDeleteResponse",
                needs=_needs(Permission.POLICY_WRITE, _IN_ORG),
                description="Switchyard's addition: the model is no longer limited by the project.",
                parameters=limit,
                missing="No such project, or no limit on that model.",
                writes=True,
            ),
        },
        base + "/spend_limit": {
            "get": _operation(
                "Getprojectspendlimit",
                "The project's hard spend limit per calendar month (UTC), in cents.",
                "ProjectSpendLimitResource",
                needs=_needs(read),
                description=(
                    "Without one: `threshold_amount` 0 and `enforcement.status` `inactive`."
                ),
                parameters=_PROJECT,
                missing="No such project.",
            ),
            "post": _operation(
                "Updateprojectspendlimit",
                "Sets the project's hard spend limit.",
                "ProjectSpendLimitResource",
                needs=_needs(Permission.POLICY_WRITE, _IN_ORG),
                description=(
                    "Requests hold their maximum cost against it when admitted; one that would "
                    "pass it is refused with a 402. `currency` and `interval` may be left out."
                ),
                parameters=_PROJECT,
                body="UpdateProjectSpendLimitBody",
                missing="No such project.",
                writes=True,
            ),
            "delete": _operation(
                "Deleteprojectspendlimit",
                "Removes the project's hard spend limit.",
                "ProjectSpendLimitDeletedResource",
                needs=_needs(Permission.POLICY_WRITE, _IN_ORG),
                parameters=_PROJECT,
                missing="No such project.",
                writes=True,
            ),
        },
        base + "/data_retention": {
            "get": _operation(
                "retrieve-project-data-retention",
                "The project's data retention.",
                "ProjectDataRetention",
                needs=_needs(read),
                parameters=_PROJECT,
                missing="No such project.",
            ),
            "post": _operation(
                "update-project-data-retention",
                "Sets the project's data retention.",
                "ProjectDataRetention",
                needs=_needs(Permission.POLICY_WRITE, _IN_ORG),
                description=(
                    "`none` keeps request logs for `retention_days` (Switchyard's field); every "
                    "other type keeps nothing."
                ),
                parameters=_PROJECT,
                body="UpdateProjectDataRetentionBody",
                missing="No such project.",
                writes=True,
            ),
        },
    }


def _money_paths() -> dict[str, Any]:
    base = _BASE + "/projects/{project_id}"
    read, write = Permission.PROJECT_READ, Permission.PROJECT_WRITE
    alert = [*_PROJECT, _parameter("alert_id", description="The alert's id.")]
    webhook = (
        "The alert's channel is Switchyard's addition, as Switchyard sends no email: a signed "
        'webhook (`{"type": "webhook", "url": ...}`), called once per month in which the '
        "project's spend reaches the threshold."
    )
    return {
        base + "/credit": {
            "get": _operation(
                "retrieve-project-credit",
                "The project's prepaid credit: granted, spent, held and available.",
                "SwitchyardProjectCredit",
                needs=_needs(Permission.CREDIT_READ),
                description="Switchyard's addition.",
                parameters=_PROJECT,
                missing="No such project.",
                unavailable="The credit ledger is being rebuilt; try again in a moment.",
            )
        },
        base + "/request_logs": {
            "get": _operation(
                "list-project-request-logs",
                "Lists the prompts and answers the project keeps, newest first.",
                "SwitchyardRequestLogList",
                needs=_needs(write),
                description=(
                    "Switchyard's addition, for a project whose `data_retention` is `none`; "
                    "every other project keeps no text, and lists nothing. `request_id` narrows "
                    "the list to one request."
                ),
                parameters=[*_PROJECT, *_PAGE, _parameter("request_id", "query")],
                missing="No such project.",
                unavailable="Metering, which keeps the logs, cannot be reached.",
            )
        },
        base + "/credit/grants": {
            "post": _operation(
                "create-project-credit-grant",
                "Adds prepaid credit to a project.",
                "SwitchyardProjectCreditGrant",
                needs=(
                    f"Needs `{Permission.CREDIT_WRITE.value}` {_IN_ORG} and `{read.value}` in "
                    "the project."
                ),
                description=(
                    "Switchyard's addition. Grants are never changed or deleted; once a project "
                    "has one, a request its available credit cannot cover is refused with a 402."
                ),
                parameters=_PROJECT,
                body="SwitchyardCreditGrantCreateRequest",
                missing="No such project.",
                writes=True,
            )
        },
        base + "/spend_alerts": {
            "get": _operation(
                "list-project-spend-alerts",
                "Lists the project's spend alerts, oldest first.",
                "ProjectSpendAlertListResource",
                needs=_needs(read),
                parameters=[
                    *_PROJECT,
                    *_PAGE,
                    _parameter(
                        "order",
                        "query",
                        "By creation time.",
                        type="string",
                        enum=["asc", "desc"],
                        default="asc",
                    ),
                ],
                missing="No such project.",
            ),
            "post": _operation(
                "create-project-spend-alert",
                "Creates a spend alert; the secret its calls are signed with is shown only here.",
                "SwitchyardProjectSpendAlertCreateResponse",
                needs=_needs(write),
                description=webhook,
                parameters=_PROJECT,
                body="CreateSpendAlertBody",
                missing="No such project.",
                writes=True,
            ),
        },
        base + "/spend_alerts/{alert_id}": {
            "get": _operation(
                "retrieve-project-spend-alert",
                "Retrieves a spend alert.",
                "ProjectSpendAlert",
                needs=_needs(read),
                parameters=alert,
            ),
            "post": _operation(
                "update-project-spend-alert",
                "Replaces a spend alert's threshold and webhook; its signing secret stays.",
                "ProjectSpendAlert",
                needs=_needs(write),
                description=webhook,
                parameters=alert,
                body="CreateSpendAlertBody",
                writes=True,
            ),
            "delete": _operation(
                "delete-project-spend-alert",
                "Deletes a spend alert.",
                "ProjectSpendAlertDeletedResource",
                needs=_needs(write),
                parameters=alert,
                writes=True,
            ),
        },
    }


def _audit_paths() -> dict[str, Any]:
    audit_id = r"^audit_[0-9a-f]{24}$"
    bound = {"type": "integer", "minimum": 0}
    lists = {
        "project_ids[]": "Only events of these projects.",
        "event_types[]": "Only events of these types.",
        "actor_ids[]": "Only events done by these people, service accounts or keys.",
        "actor_emails[]": "Only events done by people with these emails.",
        "resource_ids[]": "Only events done to these ids.",
    }
    operation = _operation(
        "list-audit-logs",
        "Lists who did what to which resource, and the requests refused, newest first.",
        "ListAuditLogsResponse",
        needs=(
            f"Needs `{Permission.AUDIT_READ.value}`: in the organization for every event, or "
            "in a project for that project's."
        ),
        description=(
            "Served by metering, which reads the caller's key. Switchyard's own event types "
            "(`request.denied`, `credit.granted`, `spend_alert.triggered`, ...) are listed in "
            "`AuditLogEventType`; each event also says its `outcome`."
        ),
        parameters=[
            {
                "in": "query",
                "name": "effective_at",
                "required": False,
                "style": "deepObject",
                "explode": True,
                "description": "Only events in this range of Unix seconds: `effective_at[gte]=...`",
                "schema": {
                    "type": "object",
                    "properties": {bound_name: bound for bound_name in ("gt", "gte", "lt", "lte")},
                    "additionalProperties": False,
                },
            },
            *(
                _parameter(
                    name,
                    "query",
                    description,
                    type="array",
                    maxItems=100,
                    items=(
                        _ref("AuditLogEventType")
                        if name == "event_types[]"
                        else {"type": "string", "minLength": 1, "maxLength": 256}
                    ),
                )
                for name, description in lists.items()
            ),
            _parameter(
                "tenant_only",
                "query",
                "Switchyard records no tenant-scoped events: only `false` is taken.",
                type="boolean",
                enum=[False],
            ),
            _LIMIT,
            _parameter(
                "after",
                "query",
                "An event's id: the page holds the events older than it.",
                type="string",
                pattern=audit_id,
            ),
            _parameter(
                "before",
                "query",
                "An event's id: the page holds the events newer than it. Not with `after`.",
                type="string",
                pattern=audit_id,
            ),
        ],
        missing="Not found.",
        unavailable="The audit log cannot be read right now; try again.",
    )
    return {_BASE + "/audit_logs": {"get": operation}}


def _usage_paths() -> dict[str, Any]:
    """OpenAI's Usage and Costs API, answered by metering from ClickHouse (its rollups when they
    can: services.metering.openai_usage)."""
    array = {"type": "array", "items": {"type": "string"}}

    def query(*names: str) -> list[dict[str, Any]]:
        known: dict[str, dict[str, Any]] = {
            "start_time": {"type": "integer"},
            "end_time": {"type": "integer"},
            "bucket_width": {"type": "string", "enum": ["1m", "1h", "1d"]},
            "project_ids": array,
            "user_ids": array,
            "api_key_ids": array,
            "models": array,
            "batch": {"type": "boolean"},
            "group_by": array,
            "limit": {"type": "integer", "minimum": 1},
            "page": {"type": "string"},
        }
        made = [_parameter(name, "query", **known[name]) for name in names]
        made[0]["required"] = True  # start_time
        return made

    common = ("start_time", "end_time", "bucket_width", "project_ids")
    needs = (
        f"Needs `{Permission.USAGE_READ.value}`: {_IN_ORG} for every project, or in a project "
        "for that project's figures only."
    )
    return {
        _BASE + "/usage/completions": {
            "get": _operation(
                "usage-completions",
                "Token usage of chat completions, in time buckets.",
                "UsageResponse",
                needs=needs,
                description=(
                    "`num_model_requests` counts every vendor attempt (retries and fallbacks "
                    "each count, as each was billed); `user_id` is the request's `user`."
                ),
                parameters=query(
                    *common,
                    "user_ids",
                    "api_key_ids",
                    "models",
                    "batch",
                    "group_by",
                    "limit",
                    "page",
                ),
                missing="Not used.",
                unavailable="Metering, which keeps usage, cannot be reached.",
            )
        },
        _BASE + "/usage/embeddings": {
            "get": _operation(
                "usage-embeddings",
                "Token usage of embeddings, in time buckets (none are served yet: empty).",
                "UsageResponse",
                needs=needs,
                parameters=query(
                    *common, "user_ids", "api_key_ids", "models", "group_by", "limit", "page"
                ),
                missing="Not used.",
                unavailable="Metering, which keeps usage, cannot be reached.",
            )
        },
        "/v1/usage/requests": {
            "get": _operation(
                "list-usage-requests",
                "The request log: one row per request, newest first.",
                {
                    "type": "object",
                    "description": (
                        "Switchyard's addition: `{object: list, data, has_more, next}`; each row "
                        "has the request's model, route, task, status, attempts, tokens, cost, "
                        "savings from cache hits and latency. No text: prompts are in a retaining "
                        "project's request logs only."
                    ),
                },
                needs=needs,
                description=(
                    "Switchyard's addition. Filters: `since`, `until`, `project`, `key_id`, "
                    "`model`, `provider`, `status`, `task_type`, `user_tag`, `batch_id`, "
                    "`request_id`; `limit` (1-200) and `after` (the `next` cursor)."
                ),
                missing="Not used.",
                unavailable="Metering, which keeps usage, cannot be reached.",
            )
        },
        "/v1/usage/query": {
            "get": _operation(
                "query-usage",
                "Usage grouped by any dimension, in any bucket, as JSON or CSV.",
                {
                    "type": "object",
                    "description": (
                        "Switchyard's addition: the rows of the query, or CSV with a header row "
                        "when `format=csv`; `x-switchyard-source` says whether the hourly "
                        "rollup or the raw events answered."
                    ),
                },
                needs=needs,
                description=(
                    "Switchyard's addition. `group_by` any of project, key_id, user_tag, "
                    "provider, model, requested_model, route_reason, task_type, policy, lane, "
                    "batch_id, status, error_class, attempt; `bucket` none, 1m, 1h, 1d, 1w; "
                    "`metrics` requests, attempts, errors, tokens of each kind, cost, "
                    "cost_uncached, savings, latency percentiles; the same filters as the "
                    "request log."
                ),
                missing="Not used.",
                unavailable="Metering, which keeps usage, cannot be reached.",
            )
        },
        _BASE + "/costs": {
            "get": _operation(
                "usage-costs",
                "Spend in daily buckets, exact to the picodollar.",
                "UsageResponse",
                needs=needs,
                description="`line_item` is the model's canonical id.",
                parameters=query(*common, "api_key_ids", "group_by", "limit", "page"),
                missing="Not used.",
                unavailable="Metering, which keeps usage, cannot be reached.",
            )
        },
    }
