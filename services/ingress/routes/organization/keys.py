"""Keys and who holds them: a project's ``service_accounts`` (creating one returns its key
once), project ``api_keys`` (held by a service account or by a person in the project), and the
organisation's ``admin_api_keys``.

A key is 256 random bits behind a visible prefix (``sk-sy-proj-``, ``sk-sy-admin-``), shown
once when created; only its SHA-256 is stored. ``expires_in_seconds`` (OpenAI's field for admin
keys) sets an expiry on any of them. Deleting a key, its holder, or archiving its project stops
it on every replica as soon as the replica reads the record.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request

from contracts.governance import (
    AdminKeyRecord,
    ApiKeyRecord,
    ProjectRecord,
    ServiceAccountRecord,
)
from services.common.access import Permission, Principal
from services.common.governance import key_sha256
from services.ingress.deps import PrincipalDep
from services.ingress.routes.organization._shared import (
    active,
    by_age,
    choice_in,
    commit,
    expiry_in,
    invalid,
    json_object,
    name_in,
    new_id,
    not_found,
    now_s,
    page,
    project_for,
    require,
    view_of,
)
from services.ingress.routes.organization.people import user_json

router = APIRouter()

PROJECT_KEY_PREFIX = "sk-sy-proj-"
ADMIN_KEY_PREFIX = "sk-sy-admin-"


def _mint(prefix: str) -> tuple[str, str, str]:
    """A new key: its value (shown once), its redacted form and its digest."""
    value = prefix + secrets.token_urlsafe(32)
    return value, f"{prefix}...{value[-4:]}", key_sha256(value)


# -- service accounts -------------------------------------------------------------------------


def _service_account_json(account: ServiceAccountRecord) -> dict[str, Any]:
    return {
        "object": "organization.project.service_account",
        "id": account.id,
        "name": account.name,
        "role": account.role,
        "created_at": account.created_at,
    }


def _account(request: Request, project_id: str, account_id: str) -> ServiceAccountRecord:
    account = view_of(request).service_accounts.get(account_id)
    if account is None or account.project_id != project_id:
        raise not_found("service account", account_id)
    return account


def _new_project_key(
    project: ProjectRecord,
    name: str,
    expires_at: int | None,
    *,
    service_account_id: str | None = None,
    user_id: str | None = None,
) -> tuple[str, ApiKeyRecord]:
    value, redacted, digest = _mint(PROJECT_KEY_PREFIX)
    key = ApiKeyRecord(
        id=new_id("key"),
        project_id=project.id,
        service_account_id=service_account_id,
        user_id=user_id,
        name=name,
        redacted_value=redacted,
        sha256=digest,
        created_at=now_s(),
        expires_at=expires_at,
    )
    return value, key


def _created_key_json(value: str, key: ApiKeyRecord, object_name: str) -> dict[str, Any]:
    return {
        "object": object_name,
        # Shown this once: only its digest is stored.
        "value": value,
        "name": key.name,
        "created_at": key.created_at,
        "id": key.id,
        "expires_at": key.expires_at,
    }


@router.get("/projects/{project_id}/service_accounts")
async def list_service_accounts(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project_for(request, principal, project_id, Permission.PROJECT_READ)
    accounts = [a for a in view_of(request).service_accounts.values() if a.project_id == project_id]
    return page(
        by_age(accounts, lambda a: a.created_at), request, _service_account_json, lambda a: a.id
    )


@router.post("/projects/{project_id}/service_accounts")
async def create_service_account(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    """OpenAI's body has ``name``; Switchyard also takes ``role`` (``member``, the default, or
    ``owner``, who may manage the project through the Admin API) and
    ``expires_in_seconds`` for the key."""
    project = project_for(request, principal, project_id, Permission.PROJECT_WRITE)
    body = await json_object(request)
    name = name_in(body, required=True)
    assert name is not None
    role = choice_in(body, "role", ("member", "owner"), "member")
    expires_at = expiry_in(body, principal)
    active(project)
    account = ServiceAccountRecord(
        id=new_id("svc_acct"),
        project_id=project_id,
        name=name,
        role="owner" if role == "owner" else "member",
        created_at=now_s(),
    )
    value, key = _new_project_key(project, f"{name} key", expires_at, service_account_id=account.id)
    await commit(
        request,
        principal,
        event="service_account.created",
        put=[account, key],
        project=project,
        target_id=account.id,
        details={"role": role, "api_key_id": key.id},
    )
    created = _created_key_json(value, key, "organization.project.service_account.api_key")
    return {**_service_account_json(account), "api_key": created}


@router.get("/projects/{project_id}/service_accounts/{service_account_id}")
async def retrieve_service_account(
    project_id: str, service_account_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project_for(request, principal, project_id, Permission.PROJECT_READ)
    return _service_account_json(_account(request, project_id, service_account_id))


@router.delete("/projects/{project_id}/service_accounts/{service_account_id}")
async def delete_service_account(
    project_id: str, service_account_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.PROJECT_WRITE)
    account = _account(request, project_id, service_account_id)
    keys = [k for k in view_of(request).api_keys.values() if k.service_account_id == account.id]
    await commit(
        request,
        principal,
        event="service_account.deleted",
        delete=[*(("api_key", k.id) for k in keys), ("service_account", account.id)],
        project=project,
        target_id=account.id,
    )
    return {
        "object": "organization.project.service_account.deleted",
        "id": account.id,
        "deleted": True,
    }


@router.post("/projects/{project_id}/service_accounts/{service_account_id}/api_keys")
async def create_service_account_key(
    project_id: str, service_account_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.PROJECT_WRITE)
    account = _account(request, project_id, service_account_id)
    body = await json_object(request)
    name = name_in(body, required=False) or f"{account.name} key"
    expires_at = expiry_in(body, principal)
    active(project)
    value, key = _new_project_key(project, name, expires_at, service_account_id=account.id)
    await commit(
        request,
        principal,
        event="api_key.created",
        put=[key],
        project=project,
        target_id=key.id,
        details={"service_account_id": account.id},
    )
    return _created_key_json(value, key, "organization.project.service_account.api_key")


# -- project API keys -------------------------------------------------------------------------


def _api_key_json(request: Request, key: ApiKeyRecord) -> dict[str, Any]:
    view = view_of(request)
    owner: dict[str, Any]
    if key.service_account_id is not None:
        owner = {"type": "service_account"}
        account = view.service_accounts.get(key.service_account_id)
        if account is not None:
            owner["service_account"] = {
                "id": account.id,
                "name": account.name,
                "created_at": account.created_at,
                "role": account.role,
            }
    else:
        owner = {"type": "user"}
        user = view.users.get(key.user_id or "")
        if user is not None:
            owner["user"] = {
                "object": "organization.project.user",
                "id": user.id,
                "name": user.name or user.email,
                "email": user.email,
                "role": view.project_role(key.project_id, user.id) or "member",
                "created_at": user.created_at,
            }
    return {
        "object": "organization.project.api_key",
        "redacted_value": key.redacted_value,
        "name": key.name,
        "created_at": key.created_at,
        "last_used_at": None,
        "expires_at": key.expires_at,
        "id": key.id,
        "owner_project_access": "active",
        "owner": owner,
    }


def _key(request: Request, project_id: str, key_id: str) -> ApiKeyRecord:
    key = view_of(request).api_keys.get(key_id)
    if key is None or key.project_id != project_id:
        raise not_found("API key", key_id)
    return key


@router.get("/projects/{project_id}/api_keys")
async def list_api_keys(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project_for(request, principal, project_id, Permission.PROJECT_READ)
    keys = [k for k in view_of(request).api_keys.values() if k.project_id == project_id]
    return page(
        by_age(keys, lambda k: k.created_at),
        request,
        lambda k: _api_key_json(request, k),
        lambda k: k.id,
    )


@router.post("/projects/{project_id}/api_keys")
async def create_user_api_key(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    """Switchyard's addition: a key held by a person in the project (``user_id``; by default
    the caller's own person), acting with their project role. A person may make their own
    keys; the project's owners may make anyone's."""
    project = project_for(request, principal, project_id, Permission.PROJECT_READ)
    body = await json_object(request)
    user_id = body.get("user_id", principal.user_id)
    if not isinstance(user_id, str) or not user_id:
        raise invalid("'user_id' must name a person in the project.", param="user_id")
    if user_id != principal.user_id:
        require(principal, Permission.PROJECT_WRITE, project_id)
    view = view_of(request)
    if view.project_role(project_id, user_id) is None:
        raise invalid(f"'{user_id}' is not a member of project '{project_id}'.", param="user_id")
    name = name_in(body, required=False) or f"{view.users[user_id].email} key"
    expires_at = expiry_in(body, principal)
    active(project)
    value, key = _new_project_key(project, name, expires_at, user_id=user_id)
    await commit(
        request,
        principal,
        event="api_key.created",
        put=[key],
        project=project,
        target_id=key.id,
        details={"user_id": user_id},
    )
    return _created_key_json(value, key, "organization.project.api_key")


@router.get("/projects/{project_id}/api_keys/{api_key_id}")
async def retrieve_api_key(
    project_id: str, api_key_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project_for(request, principal, project_id, Permission.PROJECT_READ)
    return _api_key_json(request, _key(request, project_id, api_key_id))


@router.delete("/projects/{project_id}/api_keys/{api_key_id}")
async def delete_api_key(
    project_id: str, api_key_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.PROJECT_READ)
    key = _key(request, project_id, api_key_id)
    if key.user_id is None or key.user_id != principal.user_id:  # anyone may drop their own
        require(principal, Permission.PROJECT_WRITE, project_id)
    await commit(
        request,
        principal,
        event="api_key.deleted",
        delete=[("api_key", key.id)],
        project=project,
        target_id=key.id,
    )
    return {"object": "organization.project.api_key.deleted", "id": key.id, "deleted": True}


# -- admin API keys -----------------------------------------------------------------------------


def _admin_key_json(request: Request, key: AdminKeyRecord) -> dict[str, Any]:
    user = view_of(request).users.get(key.user_id or "")
    owner: dict[str, Any] = (
        {
            "type": "user",
            "object": "organization.user",
            "id": user.id,
            "name": user.name or user.email,
            "created_at": user.created_at,
            "role": user_json(user)["role"],
        }
        if user is not None
        else {"type": "organization", "role": "owner"}
    )
    return {
        "object": "organization.admin_api_key",
        "id": key.id,
        "name": key.name,
        "redacted_value": key.redacted_value,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "last_used_at": None,
        "owner": owner,
    }


def _admin_key(request: Request, key_id: str) -> AdminKeyRecord:
    key = view_of(request).admin_keys.get(key_id)
    if key is None:
        raise not_found("admin API key", key_id)
    return key


def _owner_or_self(principal: Principal, key: AdminKeyRecord) -> None:
    """The organisation's owners, or the key's own person through an organisation key (a
    project key acts in its project only, whoever holds it)."""
    own = key.user_id is not None and key.user_id == principal.user_id
    if not own or principal.project_id is not None:
        require(principal, Permission.ORG_WRITE)


@router.get("/admin_api_keys")
async def list_admin_keys(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    require(principal, Permission.ORG_WRITE)
    keys = by_age(view_of(request).admin_keys.values(), lambda k: k.created_at)
    return page(keys, request, lambda k: _admin_key_json(request, k), lambda k: k.id)


@router.post("/admin_api_keys")
async def create_admin_key(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """OpenAI's body (``name``, ``expires_in_seconds``); Switchyard also takes ``user_id``: the
    person whose roles the key acts with (by default the caller's person, if any; without one,
    the key acts as the organisation's owner)."""
    require(principal, Permission.ORG_WRITE)
    body = await json_object(request)
    name = name_in(body, required=True)
    assert name is not None
    # A person's key makes keys of a person: an ownerless key would outlive them.
    user_id = body.get("user_id") or principal.user_id
    if user_id is not None and (
        not isinstance(user_id, str) or user_id not in view_of(request).users
    ):
        raise invalid(f"No user with id '{user_id}'.", param="user_id")
    value, redacted, digest = _mint(ADMIN_KEY_PREFIX)
    key = AdminKeyRecord(
        id=new_id("key"),
        name=name,
        redacted_value=redacted,
        sha256=digest,
        created_at=now_s(),
        expires_at=expiry_in(body, principal),
        user_id=user_id,
    )
    await commit(
        request,
        principal,
        event="api_key.created",
        put=[key],
        target_id=key.id,
        details={"admin": True, "user_id": user_id},
    )
    return {**_admin_key_json(request, key), "value": value}


@router.get("/admin_api_keys/{key_id}")
async def retrieve_admin_key(
    key_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    key = _admin_key(request, key_id)
    _owner_or_self(principal, key)
    return _admin_key_json(request, key)


@router.delete("/admin_api_keys/{key_id}")
async def delete_admin_key(
    key_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    key = _admin_key(request, key_id)
    _owner_or_self(principal, key)
    await commit(
        request,
        principal,
        event="api_key.deleted",
        delete=[("admin_api_key", key.id)],
        target_id=key.id,
        details={"admin": True},
    )
    return {"object": "organization.admin_api_key.deleted", "id": key.id, "deleted": True}
