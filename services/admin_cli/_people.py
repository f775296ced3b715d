"""``switchyard admin users`` and ``admin-keys``: who may administer the organisation, the
people with their roles and the admin keys that act for them."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from services.admin_cli._command import (
    ExpiresInOpt,
    JsonOpt,
    LimitOpt,
    ProjectArg,
    admin_api,
    command_group,
    fail,
    project_path,
    segment,
    without_none,
)
from services.admin_cli._json import Json, excerpt
from services.admin_cli._keys import keys_table, new_key_text, undo_unexpiring_key, warn_shown_once
from services.admin_cli._output import cell, emit, list_items, table, when

# The roles the Admin API takes, spelled here so typer offers and checks them.
OrgRole = Literal["owner", "reader", "analyst", "auditor"]
ProjectRole = Literal["owner", "member", "analyst", "auditor"]

users_app = command_group("The organisation's users and their roles in projects.")
admin_keys_app = command_group("Admin API keys (the keys these commands use).")


# -- users --------------------------------------------------------------------------------------


def _users_table(body: Json) -> str:
    users = list_items(body)
    if not users:
        return "no users"
    rows = [
        (
            cell(u.get("id")),
            cell(u.get("email")),
            cell(u.get("name")),
            cell(u.get("role")),
            when(u.get("added_at", u.get("created_at"))),
        )
        for u in users
    ]
    return table(("ID", "EMAIL", "NAME", "ROLE", "ADDED"), rows)


@users_app.command("list")
def list_users(
    ctx: typer.Context,
    project: Annotated[
        str | None, typer.Option(help="Only this project's users, with their project roles.")
    ] = None,
    limit: LimitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the organisation's users, or a project's."""
    path = "/organization/users" if project is None else f"{project_path(project)}/users"
    with admin_api(ctx) as api:
        body = api.list_all(path, limit=limit)
    emit(body, as_json, _users_table)


@users_app.command("create")
def create_user(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The user's email address.")],
    role: Annotated[OrgRole, typer.Option(help="The user's role in the organisation.")],
    name: Annotated[str | None, typer.Option(help="The user's name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a user to the organisation."""
    with admin_api(ctx) as api:
        body = api.post(
            "/organization/users", without_none({"email": email, "name": name, "role": role})
        )
    emit(body, as_json, lambda b: _users_table({"data": [b]}))


@users_app.command("remove")
def remove_user(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(metavar="USER_ID", help="The user's id.")],
    as_json: JsonOpt = False,
) -> None:
    """Remove a user from the organisation."""
    with admin_api(ctx) as api:
        body = api.delete(f"/organization/users/{segment(user_id)}")
    emit(body, as_json, lambda b: f"Removed user {cell(b.get('id') or user_id)}.")


@users_app.command("add-to-project")
def add_user_to_project(
    ctx: typer.Context,
    project: ProjectArg,
    user_id: Annotated[str, typer.Argument(metavar="USER_ID", help="The user's id.")],
    role: Annotated[ProjectRole, typer.Option(help="The user's role in the project.")],
    as_json: JsonOpt = False,
) -> None:
    """Give a user a role in a project."""
    with admin_api(ctx) as api:
        body = api.post(f"{project_path(project)}/users", {"user_id": user_id, "role": role})
    emit(body, as_json, lambda b: _users_table({"data": [b]}))


# -- admin keys ---------------------------------------------------------------------------------


@admin_keys_app.command("list")
def list_admin_keys(ctx: typer.Context, limit: LimitOpt = None, as_json: JsonOpt = False) -> None:
    """List the organisation's admin API keys (redacted)."""
    with admin_api(ctx) as api:
        body = api.list_all("/organization/admin_api_keys", limit=limit)
    emit(body, as_json, keys_table)


@admin_keys_app.command("create")
def create_admin_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The key's name.")],
    user: Annotated[
        str | None,
        typer.Option("--user", metavar="USER_ID", help="The user whose roles the key acts with."),
    ] = None,
    expires_in: ExpiresInOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an admin API key and print it, shown only once."""
    with admin_api(ctx) as api:
        body = api.post(
            "/organization/admin_api_keys",
            without_none({"name": name, "user_id": user, "expires_in_seconds": expires_in}),
        )
        if not body.get("value"):
            fail(f"the API created a key but did not show it: {excerpt(body)}")
        if expires_in is not None and body.get("expires_at") is None:
            undo_unexpiring_key(
                api, f"/organization/admin_api_keys/{segment(cell(body.get('id')))}"
            )
    emit(body, as_json, lambda b: new_key_text(b, None))
    warn_shown_once()


@admin_keys_app.command("revoke")
def revoke_admin_key(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id.")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke an admin API key."""
    with admin_api(ctx) as api:
        body = api.delete(f"/organization/admin_api_keys/{segment(key_id)}")
    emit(body, as_json, lambda b: f"Revoked admin key {cell(b.get('id') or key_id)}.")
