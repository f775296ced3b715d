"""OpenAI's Admin API, first part: ``/v1/organization/projects`` with their service accounts and
API keys, in OpenAI's shapes and pagination (``../shared/specs/openai-openapi.yaml``).

A project is a team. A service account of a project holds an API key, shown once when the
account is created; the key authenticates chat calls as that project (``services.ingress.auth``).
Only the organisation's owner (the bootstrap admin key, for now) may call these routes.

Writes go to the governance topic and return once this replica has applied them
(``services.common.governance``); every other replica applies them as it reads the topic.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, Request

from contracts.catalogue import Catalogue, UnknownModel
from contracts.errors import ErrorCode, ErrorInfo
from contracts.governance import (
    ApiKeyRecord,
    ModelAccess,
    ModelPermissionsRecord,
    ProjectRecord,
    ServiceAccountRecord,
)
from services.common.governance import (
    GovernanceUnavailable,
    GovernanceView,
    GovernanceWriter,
    key_sha256,
)
from services.ingress.auth import KeyRing, Principal
from services.ingress.body import read_json_body
from services.ingress.deps import PrincipalDep, SettingsDep
from services.ingress.errors import ApiError

router = APIRouter(prefix="/v1/organization")

_DEFAULT_LIMIT = 20
_MAX_LIMIT = 100
_MAX_NAME = 256
# Project keys: ``sk-sy-proj-`` and 43 URL-safe characters (256 random bits).
_KEY_PREFIX = "sk-sy-proj-"

_T = TypeVar("_T")


async def _save(
    request: Request,
    *records: ProjectRecord | ServiceAccountRecord | ApiKeyRecord | ModelPermissionsRecord,
) -> None:
    writer: GovernanceWriter = request.app.state.governance
    try:
        for record in records:
            await writer.put(record)
    except GovernanceUnavailable as exc:
        raise _unavailable() from exc


async def _remove(request: Request, *entities: tuple[str, str]) -> None:
    writer: GovernanceWriter = request.app.state.governance
    try:
        for kind, entity_id in entities:
            await writer.delete(kind, entity_id)
    except GovernanceUnavailable as exc:
        raise _unavailable() from exc


def _unavailable() -> ApiError:
    return ApiError(
        ErrorInfo(
            code=ErrorCode.UNAVAILABLE,
            message="The change could not be recorded right now; try again shortly.",
            retryable=True,
            retry_after_s=1.0,
        )
    )


def _view(request: Request) -> GovernanceView:
    keys: KeyRing = request.app.state.keys
    return keys.governance


def _owner_only(principal: Principal) -> None:
    if not principal.is_admin:
        raise ApiError(
            ErrorInfo(
                code=ErrorCode.PERMISSION_DENIED,
                message="Only the organization's owner may manage projects and keys.",
            )
        )


def _not_found(what: str, entity_id: str) -> ApiError:
    return ApiError(
        ErrorInfo(code=ErrorCode.NOT_FOUND, message=f"No {what} with id '{entity_id}'.")
    )


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _now_s() -> int:
    return int(time.time())


async def _name(request: Request, settings: SettingsDep, *, required: bool) -> str | None:
    body = await read_json_body(request, limit=settings.max_body_bytes)
    if not isinstance(body, dict):
        raise _invalid("The body must be a JSON object.")
    name = body.get("name")
    if name is None and not required:
        return None
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
        raise _invalid(
            f"'name' must be a non-empty string of at most {_MAX_NAME} characters.", param="name"
        )
    return name.strip()


def _page(
    items: Sequence[_T],
    request: Request,
    render: Callable[[_T], dict[str, Any]],
    id_of: Callable[[_T], str],
) -> dict[str, Any]:
    """OpenAI's list shape over ``items`` (oldest first): ``limit`` 1..100 (default 20) and
    ``after``, an id the page starts after."""
    raw_limit = request.query_params.get("limit", str(_DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= _MAX_LIMIT:
        raise ApiError(
            ErrorInfo(
                code=ErrorCode.INVALID_REQUEST,
                message=f"'limit' must be an integer from 1 to {_MAX_LIMIT}.",
                param="limit",
            )
        )
    limit = int(raw_limit)
    after = request.query_params.get("after")
    start = 0
    if after is not None:
        ids = [id_of(item) for item in items]
        if after not in ids:
            raise ApiError(
                ErrorInfo(
                    code=ErrorCode.INVALID_REQUEST,
                    message=f"'after' names no object of this list: '{after}'.",
                    param="after",
                )
            )
        start = ids.index(after) + 1
    page = items[start : start + limit]
    data = [render(item) for item in page]
    return {
        "object": "list",
        "data": data,
        "first_id": id_of(page[0]) if page else None,
        "last_id": id_of(page[-1]) if page else None,
        "has_more": start + limit < len(items),
    }


def _project_json(project: ProjectRecord) -> dict[str, Any]:
    return {
        "id": project.id,
        "object": "organization.project",
        "name": project.name,
        "created_at": project.created_at,
        "archived_at": project.archived_at,
        "status": "active" if project.active else "archived",
    }


def _service_account_json(account: ServiceAccountRecord) -> dict[str, Any]:
    return {
        "object": "organization.project.service_account",
        "id": account.id,
        "name": account.name,
        "role": account.role,
        "created_at": account.created_at,
    }


def _api_key_json(key: ApiKeyRecord, account: ServiceAccountRecord | None) -> dict[str, Any]:
    owner: dict[str, Any] = {"type": "service_account"}
    if account is not None:
        owner["service_account"] = {
            "id": account.id,
            "name": account.name,
            "created_at": account.created_at,
            "role": account.role,
        }
    return {
        "object": "organization.project.api_key",
        "redacted_value": key.redacted_value,
        "name": key.name,
        "created_at": key.created_at,
        "last_used_at": None,
        "id": key.id,
        "owner_project_access": "active",
        "owner": owner,
    }


def _owned_project(request: Request, principal: Principal, project_id: str) -> ProjectRecord:
    """The project a route works on, once the caller is known to own it."""
    _owner_only(principal)
    project: ProjectRecord | None = _view(request).projects.get(project_id)
    if project is None:
        raise _not_found("project", project_id)
    return project


def _by_age(records: Sequence[_T], created: Callable[[_T], int]) -> list[_T]:
    """Oldest first. ``created_at`` has whole seconds only: within one second, the order the
    records were written in (every replica applies the topic in one order, and the view's
    dicts keep it), which a stable sort preserves."""
    return sorted(records, key=created)


# -- projects ---------------------------------------------------------------------------------


@router.get("/projects")
async def list_projects(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    _owner_only(principal)
    include_archived = request.query_params.get("include_archived", "false").lower() == "true"
    projects = [p for p in _view(request).projects.values() if include_archived or p.active]
    ordered = _by_age(projects, lambda p: p.created_at)
    return _page(ordered, request, _project_json, lambda p: p.id)


@router.post("/projects")
async def create_project(
    request: Request, principal: PrincipalDep, settings: SettingsDep
) -> dict[str, Any]:
    _owner_only(principal)
    name = await _name(request, settings, required=True)
    assert name is not None
    project = ProjectRecord(id=_new_id("proj"), name=name, created_at=_now_s())
    await _save(request, project)
    return _project_json(project)


@router.get("/projects/{project_id}")
async def retrieve_project(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    return _project_json(_owned_project(request, principal, project_id))


@router.post("/projects/{project_id}")
async def modify_project(
    project_id: str, request: Request, principal: PrincipalDep, settings: SettingsDep
) -> dict[str, Any]:
    project = _owned_project(request, principal, project_id)
    name = await _name(request, settings, required=False)
    if not project.active:
        raise ApiError(
            ErrorInfo(
                code=ErrorCode.INVALID_REQUEST,
                message=f"Project '{project_id}' is archived and cannot be modified.",
            )
        )
    if name is not None:
        project = project.model_copy(update={"name": name})
        await _save(request, project)
    return _project_json(project)


@router.post("/projects/{project_id}/archive")
async def archive_project(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = _owned_project(request, principal, project_id)
    if project.active:
        # Its keys stop working on every replica as the record is read (services.ingress.auth).
        project = project.model_copy(update={"archived_at": _now_s()})
        await _save(request, project)
    return _project_json(project)


# -- service accounts -------------------------------------------------------------------------


def _accounts_of(request: Request, project_id: str) -> list[ServiceAccountRecord]:
    accounts = [a for a in _view(request).service_accounts.values() if a.project_id == project_id]
    return _by_age(accounts, lambda a: a.created_at)


def _account(request: Request, project_id: str, account_id: str) -> ServiceAccountRecord:
    account: ServiceAccountRecord | None = _view(request).service_accounts.get(account_id)
    if account is None or account.project_id != project_id:
        raise _not_found("service account", account_id)
    return account


@router.get("/projects/{project_id}/service_accounts")
async def list_service_accounts(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    _owned_project(request, principal, project_id)
    return _page(_accounts_of(request, project_id), request, _service_account_json, lambda a: a.id)


@router.post("/projects/{project_id}/service_accounts")
async def create_service_account(
    project_id: str, request: Request, principal: PrincipalDep, settings: SettingsDep
) -> dict[str, Any]:
    project = _owned_project(request, principal, project_id)
    name = await _name(request, settings, required=True)
    assert name is not None
    if not project.active:
        raise ApiError(
            ErrorInfo(
                code=ErrorCode.INVALID_REQUEST,
                message=f"Project '{project_id}' is archived; it takes no new service accounts.",
            )
        )
    created = _now_s()
    account = ServiceAccountRecord(
        id=_new_id("svc_acct"), project_id=project_id, name=name, created_at=created
    )
    value = _KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKeyRecord(
        id=_new_id("key"),
        project_id=project_id,
        service_account_id=account.id,
        name=f"{name} key",
        redacted_value=f"{_KEY_PREFIX}...{value[-4:]}",
        sha256=key_sha256(value),
        created_at=created,
    )
    await _save(request, account, key)
    return {
        **_service_account_json(account),
        # Shown this once: only its digest is stored.
        "api_key": {
            "object": "organization.project.service_account.api_key",
            "value": value,
            "name": key.name,
            "created_at": key.created_at,
            "id": key.id,
        },
    }


@router.get("/projects/{project_id}/service_accounts/{service_account_id}")
async def retrieve_service_account(
    project_id: str, service_account_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    _owned_project(request, principal, project_id)
    return _service_account_json(_account(request, project_id, service_account_id))


@router.delete("/projects/{project_id}/service_accounts/{service_account_id}")
async def delete_service_account(
    project_id: str, service_account_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    _owned_project(request, principal, project_id)
    account = _account(request, project_id, service_account_id)
    keys = [k for k in _view(request).api_keys.values() if k.service_account_id == account.id]
    await _remove(request, *(("api_key", k.id) for k in keys), ("service_account", account.id))
    return {
        "object": "organization.project.service_account.deleted",
        "id": account.id,
        "deleted": True,
    }


# -- API keys ---------------------------------------------------------------------------------


def _key(request: Request, project_id: str, key_id: str) -> ApiKeyRecord:
    key: ApiKeyRecord | None = _view(request).api_keys.get(key_id)
    if key is None or key.project_id != project_id:
        raise _not_found("API key", key_id)
    return key


@router.get("/projects/{project_id}/api_keys")
async def list_api_keys(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    _owned_project(request, principal, project_id)
    view = _view(request)
    keys = _by_age(
        [k for k in view.api_keys.values() if k.project_id == project_id],
        lambda k: k.created_at,
    )
    return _page(
        keys,
        request,
        lambda k: _api_key_json(k, view.service_accounts.get(k.service_account_id)),
        lambda k: k.id,
    )


@router.get("/projects/{project_id}/api_keys/{api_key_id}")
async def retrieve_api_key(
    project_id: str, api_key_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    _owned_project(request, principal, project_id)
    key = _key(request, project_id, api_key_id)
    return _api_key_json(key, _view(request).service_accounts.get(key.service_account_id))


@router.delete("/projects/{project_id}/api_keys/{api_key_id}")
async def delete_api_key(
    project_id: str, api_key_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    _owned_project(request, principal, project_id)
    key = _key(request, project_id, api_key_id)
    await _remove(request, ("api_key", key.id))
    return {"object": "organization.project.api_key.deleted", "id": key.id, "deleted": True}


# -- model permissions --------------------------------------------------------------------------

# Many enough for any allow-list a person writes; a bound on what one record carries.
_MAX_MODEL_IDS = 1000


def _permissions_json(access: ModelAccess | None) -> dict[str, Any]:
    # No permissions set means every model: an empty deny list says the same.
    shown = access or ModelAccess(mode="deny_list")
    return {"object": "project.model_permissions", "mode": shown.mode, "model_ids": shown.model_ids}


async def _requested_access(request: Request, settings: SettingsDep) -> ModelAccess:
    body = await read_json_body(request, limit=settings.max_body_bytes)
    if not isinstance(body, dict):
        raise _invalid("The body must be a JSON object.")
    mode, names = body.get("mode"), body.get("model_ids")
    if mode not in ("allow_list", "deny_list"):
        raise _invalid("'mode' must be 'allow_list' or 'deny_list'.", param="mode")
    if (
        not isinstance(names, list)
        or len(names) > _MAX_MODEL_IDS
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise _invalid(
            f"'model_ids' must be a list of at most {_MAX_MODEL_IDS} model ids.", param="model_ids"
        )
    catalogue: Catalogue = request.app.state.catalogue
    canonical: list[str] = []
    for index, name in enumerate(names):
        try:
            found = catalogue.resolve(name).card.canonical_id
        except UnknownModel as exc:
            info = exc.error_info().model_copy(update={"param": f"model_ids[{index}]"})
            raise ApiError(info) from exc
        if found not in canonical:
            canonical.append(found)
    return ModelAccess(mode=mode, model_ids=canonical)


def _invalid(message: str, *, param: str | None = None) -> ApiError:
    return ApiError(ErrorInfo(code=ErrorCode.INVALID_REQUEST, message=message, param=param))


@router.get("/projects/{project_id}/model_permissions")
async def retrieve_model_permissions(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    _owned_project(request, principal, project_id)
    return _permissions_json(_view(request).model_access.get(project_id))


@router.post("/projects/{project_id}/model_permissions")
async def update_model_permissions(
    project_id: str, request: Request, principal: PrincipalDep, settings: SettingsDep
) -> dict[str, Any]:
    """Model ids are stored as canonical ``provider/model`` ids: an alias or a bare id names
    the same model whichever way a request later spells it."""
    _owned_project(request, principal, project_id)
    access = await _requested_access(request, settings)
    await _save(request, ModelPermissionsRecord(id=project_id, access=access))
    return _permissions_json(access)


@router.delete("/projects/{project_id}/model_permissions")
async def delete_model_permissions(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    _owned_project(request, principal, project_id)
    await _remove(request, ("model_permissions", project_id))
    return {"object": "project.model_permissions.deleted", "deleted": True}
