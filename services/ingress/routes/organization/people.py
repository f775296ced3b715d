"""People and roles: the organisation's ``users``, a project's ``users``, the predefined
``roles`` and the organisation roles assigned to a person.

OpenAI adds people by email invitation through its dashboard; Switchyard has no dashboard to
accept one in, so ``POST /v1/organization/users`` (Switchyard's addition) adds a person
directly. A person holds keys: admin API keys acting with their organisation roles, and
project keys acting with their role in that project (``services.common.access``). Removing a
person from the organisation or a project removes the keys they held there.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Request

from contracts.governance import OrgRole, ProjectRecord, ProjectRole, ProjectUserRecord, UserRecord
from services.common.access import ROLES, Permission, Role, Scope, role_named
from services.ingress.deps import PrincipalDep
from services.ingress.routes.organization._shared import (
    active,
    by_age,
    commit,
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

router = APIRouter()

_ORG_ROLES: tuple[OrgRole, ...] = ("owner", "reader", "analyst", "auditor")
_PROJECT_ROLES: tuple[ProjectRole, ...] = ("owner", "member", "analyst", "auditor")
_MAX_EMAIL = 320


def user_json(user: UserRecord) -> dict[str, Any]:
    # OpenAI's ``role`` is ``owner`` or ``reader``; the full set is in ``roles`` (ours).
    return {
        "object": "organization.user",
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": "owner" if "owner" in user.roles else "reader",
        "roles": list(user.roles),
        "added_at": user.created_at,
    }


def _user(request: Request, user_id: str) -> UserRecord:
    user = view_of(request).users.get(user_id)
    if user is None:
        raise not_found("user", user_id)
    return user


def _email_in(body: dict[str, Any]) -> str:
    email = body.get("email")
    if (
        not isinstance(email, str)
        or len(email) > _MAX_EMAIL
        or email.count("@") != 1
        or not all(email.split("@"))
        or any(c.isspace() for c in email)
    ):
        raise invalid("'email' must be an email address.", param="email")
    return email.strip().lower()


def _org_role_in(body: dict[str, Any], default: str | None = None) -> OrgRole:
    role = body.get("role", default)
    if role not in _ORG_ROLES:
        raise invalid(f"'role' must be one of: {', '.join(_ORG_ROLES)}.", param="role")
    return cast(OrgRole, role)


def _project_role_in(body: dict[str, Any]) -> ProjectRole:
    role = body.get("role")
    if role not in _PROJECT_ROLES:
        raise invalid(f"'role' must be one of: {', '.join(_PROJECT_ROLES)}.", param="role")
    return cast(ProjectRole, role)


def _held_keys(
    request: Request, user_id: str, project_id: str | None = None
) -> list[tuple[str, str]]:
    view = view_of(request)
    held = [
        ("api_key", k.id)
        for k in view.api_keys.values()
        if k.user_id == user_id and (project_id is None or k.project_id == project_id)
    ]
    if project_id is None:
        held += [("admin_api_key", k.id) for k in view.admin_keys.values() if k.user_id == user_id]
    return held


# -- organisation users ---------------------------------------------------------------------


@router.get("/users")
async def list_users(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    require(principal, Permission.ORG_READ)
    emails = set(request.query_params.getlist("emails"))
    users = [u for u in view_of(request).users.values() if not emails or u.email in emails]
    return page(by_age(users, lambda u: u.created_at), request, user_json, lambda u: u.id)


@router.post("/users")
async def create_user(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    require(principal, Permission.ORG_WRITE)
    body = await json_object(request)
    email = _email_in(body)
    name = name_in(body, required=False)
    role = _org_role_in(body, default="reader")
    if any(u.email == email for u in view_of(request).users.values()):
        raise invalid(f"A user with email '{email}' exists already.", param="email")
    user = UserRecord(id=new_id("user"), email=email, name=name, roles=[role], created_at=now_s())
    await commit(
        request,
        principal,
        event="user.added",
        put=[user],
        target_id=user.id,
        details={"email": email, "role": role},
    )
    return user_json(user)


@router.get("/users/{user_id}")
async def retrieve_user(user_id: str, request: Request, principal: PrincipalDep) -> dict[str, Any]:
    if user_id != principal.user_id:
        require(principal, Permission.ORG_READ)
    return user_json(_user(request, user_id))


@router.post("/users/{user_id}")
async def modify_user(user_id: str, request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """OpenAI's body: ``role``, which replaces the person's organisation roles."""
    require(principal, Permission.ORG_WRITE)
    user = _user(request, user_id)
    role = _org_role_in(await json_object(request))
    user = user.model_copy(update={"roles": [role]})
    await commit(
        request,
        principal,
        event="user.updated",
        put=[user],
        target_id=user.id,
        details={"role": role},
    )
    return user_json(user)


@router.delete("/users/{user_id}")
async def delete_user(user_id: str, request: Request, principal: PrincipalDep) -> dict[str, Any]:
    require(principal, Permission.ORG_WRITE)
    user = _user(request, user_id)
    memberships = [
        ("project_user", m.id)
        for m in view_of(request).project_users.values()
        if m.user_id == user.id
    ]
    await commit(
        request,
        principal,
        event="user.deleted",
        delete=[*_held_keys(request, user.id), *memberships, ("user", user.id)],
        target_id=user.id,
    )
    return {"object": "organization.user.deleted", "id": user.id, "deleted": True}


# -- roles ------------------------------------------------------------------------------------


def _role_json(role: Role) -> dict[str, Any]:
    return {
        "object": "role",
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "permissions": sorted(p.value for p in role.permissions),
        "resource_type": role.scope.value,
        "predefined_role": True,
    }


def _assigned_json(role: Role) -> dict[str, Any]:
    # Predefined roles: nobody created them, and they carry no metadata.
    shown = _role_json(role)
    del shown["object"]
    return {
        **shown,
        "created_at": None,
        "updated_at": None,
        "created_by": None,
        "created_by_user_obj": None,
        "metadata": None,
        "assignment_sources": None,
    }


@router.get("/roles")
async def list_roles(principal: PrincipalDep) -> dict[str, Any]:
    """The predefined roles, organisation and project ones. Custom roles are not offered."""
    require(principal, Permission.ORG_READ)
    return {
        "object": "list",
        "data": [_role_json(r) for r in ROLES.values()],
        "has_more": False,
        "next": None,
    }


@router.get("/roles/{role_id}")
async def retrieve_role(role_id: str, principal: PrincipalDep) -> dict[str, Any]:
    require(principal, Permission.ORG_READ)
    role = ROLES.get(role_id)
    if role is None:
        raise not_found("role", role_id)
    return _role_json(role)


def _org_role(role_id: str) -> Role:
    role = ROLES.get(role_id)
    if role is None or role.scope is not Scope.ORGANIZATION:
        raise not_found("organization role", role_id)
    return role


@router.get("/users/{user_id}/roles")
async def list_user_roles(
    user_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    if user_id != principal.user_id:
        require(principal, Permission.ORG_READ)
    user = _user(request, user_id)
    roles = [r for name in user.roles if (r := role_named(Scope.ORGANIZATION, name)) is not None]
    return {
        "object": "list",
        "data": [_assigned_json(r) for r in roles],
        "has_more": False,
        "next": None,
    }


@router.post("/users/{user_id}/roles")
async def assign_user_role(
    user_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    require(principal, Permission.ORG_WRITE)
    user = _user(request, user_id)
    body = await json_object(request)
    role_id = body.get("role_id")
    if not isinstance(role_id, str):
        raise invalid("'role_id' must name an organization role.", param="role_id")
    role = _org_role(role_id)
    if role.name not in user.roles:
        user = user.model_copy(update={"roles": [*user.roles, role.name]})
        await commit(
            request,
            principal,
            event="role.assignment.created",
            put=[user],
            target_id=user.id,
            details={"role_id": role.id},
        )
    return {"object": "user.role", "user": user_json(user), "role": _role_json(role)}


@router.delete("/users/{user_id}/roles/{role_id}")
async def unassign_user_role(
    user_id: str, role_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    require(principal, Permission.ORG_WRITE)
    user = _user(request, user_id)
    role = _org_role(role_id)
    if role.name not in user.roles:
        raise not_found("role assignment", role_id)
    if len(user.roles) == 1:
        raise invalid("A user keeps at least one organization role; assign another first.")
    user = user.model_copy(update={"roles": [r for r in user.roles if r != role.name]})
    await commit(
        request,
        principal,
        event="role.assignment.deleted",
        put=[user],
        target_id=user.id,
        details={"role_id": role.id},
    )
    return {"object": "user.role.deleted", "deleted": True}


# -- project users ----------------------------------------------------------------------------


def _project_user_json(request: Request, member: ProjectUserRecord) -> dict[str, Any]:
    user = view_of(request).users.get(member.user_id)
    return {
        "object": "organization.project.user",
        "id": member.user_id,
        "name": user.name if user else None,
        "email": user.email if user else None,
        "role": member.role,
        "added_at": member.added_at,
    }


def _member(request: Request, project: ProjectRecord, user_id: str) -> ProjectUserRecord:
    member = view_of(request).project_users.get(ProjectUserRecord.make_id(project.id, user_id))
    if member is None:
        raise not_found("project user", user_id)
    return member


@router.get("/projects/{project_id}/users")
async def list_project_users(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project_for(request, principal, project_id, Permission.PROJECT_READ)
    members = [m for m in view_of(request).project_users.values() if m.project_id == project_id]
    return page(
        by_age(members, lambda m: m.added_at),
        request,
        lambda m: _project_user_json(request, m),
        lambda m: m.user_id,
    )


@router.post("/projects/{project_id}/users")
async def add_project_user(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.PROJECT_WRITE)
    body = await json_object(request)
    view = view_of(request)
    user_id, email = body.get("user_id"), body.get("email")
    user = (
        view.users.get(user_id)
        if isinstance(user_id, str)
        else next((u for u in view.users.values() if u.email == email), None)
    )
    if user is None:
        raise invalid(
            "'user_id' (or 'email') must name a user of the organization.", param="user_id"
        )
    role = _project_role_in(body)
    active(project)
    if view.project_role(project_id, user.id) is not None:
        raise invalid(
            f"'{user.id}' is a member of project '{project_id}' already.", param="user_id"
        )
    member = ProjectUserRecord(
        id=ProjectUserRecord.make_id(project_id, user.id),
        project_id=project_id,
        user_id=user.id,
        role=role,
        added_at=now_s(),
    )
    await commit(
        request,
        principal,
        event="user.added",
        put=[member],
        project=project,
        target_id=user.id,
        details={"role": role},
    )
    return _project_user_json(request, member)


@router.get("/projects/{project_id}/users/{user_id}")
async def retrieve_project_user(
    project_id: str, user_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.PROJECT_READ)
    return _project_user_json(request, _member(request, project, user_id))


@router.post("/projects/{project_id}/users/{user_id}")
async def modify_project_user(
    project_id: str, user_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.PROJECT_WRITE)
    member = _member(request, project, user_id)
    role = _project_role_in(await json_object(request))
    member = member.model_copy(update={"role": role})
    await commit(
        request,
        principal,
        event="user.updated",
        put=[member],
        project=project,
        target_id=user_id,
        details={"role": role},
    )
    return _project_user_json(request, member)


@router.delete("/projects/{project_id}/users/{user_id}")
async def remove_project_user(
    project_id: str, user_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.PROJECT_WRITE)
    member = _member(request, project, user_id)
    await commit(
        request,
        principal,
        event="user.deleted",
        delete=[*_held_keys(request, user_id, project_id), ("project_user", member.id)],
        project=project,
        target_id=user_id,
    )
    return {"object": "organization.project.user.deleted", "id": user_id, "deleted": True}
