"""``switchyard admin keys`` and ``service-accounts``: a project's API keys and the service
accounts that hold them. Also how any new key is shown (admin keys' too): once, last, alone on
its line."""

from __future__ import annotations

from typing import Annotated, Literal, NoReturn

import typer

from services.admin_cli._client import AdminClient
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
from services.admin_cli._errors import AdminError
from services.admin_cli._json import Json, excerpt
from services.admin_cli._output import cell, emit, list_items, table, when

# The roles the Admin API takes, spelled here so typer offers and checks them.
ServiceAccountRole = Literal["member", "owner"]

service_accounts_app = command_group("A project's service accounts (each holds API keys).")
keys_app = command_group("A project's API keys: create (shown once), list, show, revoke.")


# -- service accounts ---------------------------------------------------------------------------


@service_accounts_app.command("list")
def list_service_accounts(
    ctx: typer.Context, project: ProjectArg, limit: LimitOpt = None, as_json: JsonOpt = False
) -> None:
    """List a project's service accounts."""
    with admin_api(ctx) as api:
        body = api.list_all(f"{project_path(project)}/service_accounts", limit=limit)

    def render(body: Json) -> str:
        accounts = list_items(body)
        if not accounts:
            return f"no service accounts in {project}"
        rows = [
            (cell(a.get("id")), cell(a.get("name")), cell(a.get("role")), when(a.get("created_at")))
            for a in accounts
        ]
        return table(("ID", "NAME", "ROLE", "CREATED"), rows)

    emit(body, as_json, render)


@service_accounts_app.command("remove")
def remove_service_account(
    ctx: typer.Context,
    project: ProjectArg,
    service_account: Annotated[str, typer.Argument(help="The service account's id.")],
    as_json: JsonOpt = False,
) -> None:
    """Remove a service account and revoke every key it holds."""
    with admin_api(ctx) as api:
        body = api.delete(f"{project_path(project)}/service_accounts/{segment(service_account)}")
    emit(body, as_json, lambda b: f"Removed service account {cell(b.get('id'))} and its keys.")


# -- showing keys -------------------------------------------------------------------------------


def _owner(owner: object) -> str:
    if not isinstance(owner, dict):
        return "-"
    kind = owner.get("type")
    who = owner.get(kind) if isinstance(kind, str) else None
    who = who if isinstance(who, dict) else owner
    label = who.get("email") or who.get("name")
    ident = who.get("id")
    if label and ident:
        return f"{label} ({ident})"
    return cell(label or ident or kind)


def _expiry(key: Json) -> str:
    if "expires_at" not in key:
        return "-"
    return "never" if key["expires_at"] is None else when(key["expires_at"])


def keys_table(body: Json) -> str:
    """API keys or admin keys, redacted, one a line."""
    keys = list_items(body)
    if not keys:
        return "no keys"
    rows = [
        (
            cell(k.get("id")),
            cell(k.get("name")),
            cell(k.get("redacted_value")),
            _owner(k.get("owner")),
            when(k.get("created_at")),
            when(k.get("last_used_at")),
            _expiry(k),
        )
        for k in keys
    ]
    header = ("ID", "NAME", "KEY", "OWNER", "CREATED", "LAST USED", "EXPIRES")
    return table(header, rows)


def new_key_text(key: Json, account: Json | None) -> str:
    """A key just made, with its value, and the service account made with it if any."""
    lines = []
    if account is not None:
        lines.append(
            f"Service account {cell(account.get('id'))} {cell(account.get('name'))!r}"
            f" (role {cell(account.get('role'))})"
        )
    expires = key.get("expires_at")
    lines.append(
        f"API key {cell(key.get('id'))} {cell(key.get('name'))!r}, "
        + (f"expires {when(expires)}" if expires is not None else "does not expire")
    )
    # Last and alone on its line, for `| tail -n 1`.
    lines.append(cell(key.get("value")))
    return "\n".join(lines)


def warn_shown_once() -> None:
    typer.echo(
        "Store this key now: it is shown only once (Switchyard keeps only its digest).", err=True
    )


def undo_unexpiring_key(api: AdminClient, path: str) -> NoReturn:
    """An expiry asked for and not set (an API that does not know ``expires_in_seconds``)
    would leave a key that never expires and that nobody meant to have: it is taken away."""
    try:
        api.delete(path)
    except AdminError as exc:
        raise AdminError(
            f"the API ignored --expires-in and the key it made, which does not expire, could "
            f"not be removed ({exc}): DELETE {path}"
        ) from exc
    raise AdminError("the API ignored --expires-in; the key it made was removed")


# -- keys ---------------------------------------------------------------------------------------


@keys_app.command("create")
def create_key(
    ctx: typer.Context,
    project: ProjectArg,
    name: Annotated[
        str,
        typer.Option(
            "--name", help="The new service account's name (with --service-account: the key's)."
        ),
    ],
    role: Annotated[
        ServiceAccountRole | None,
        typer.Option(help="The new service account's role in the project (default member)."),
    ] = None,
    expires_in: ExpiresInOpt = None,
    service_account: Annotated[
        str | None,
        typer.Option(
            "--service-account",
            help="Add a key to this existing service account instead of creating one"
            " (a rotation); --name then names the key.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a service account in a project and print its API key, which is shown only once.

    The key authenticates chat calls as the project.
    """
    if service_account is not None and role is not None:
        raise typer.BadParameter("applies to a new service account only", param_hint="--role")
    accounts = f"{project_path(project)}/service_accounts"
    with admin_api(ctx) as api:
        if service_account is None:
            body = api.post(
                accounts,
                without_none({"name": name, "role": role, "expires_in_seconds": expires_in}),
            )
            account: Json | None = body
            key = body.get("api_key")
            undo = f"{accounts}/{segment(cell(body.get('id')))}"
        else:
            body = api.post(
                f"{accounts}/{segment(service_account)}/api_keys",
                without_none({"name": name, "expires_in_seconds": expires_in}),
            )
            account, key = None, body
            undo = f"{project_path(project)}/api_keys/{segment(cell(body.get('id')))}"
        if not isinstance(key, dict) or not key.get("value"):
            fail(f"the API created a key but did not show it: {excerpt(body)}")
        if expires_in is not None and key.get("expires_at") is None:
            undo_unexpiring_key(api, undo)
    emit(body, as_json, lambda _: new_key_text(key, account))
    warn_shown_once()


@keys_app.command("list")
def list_keys(
    ctx: typer.Context, project: ProjectArg, limit: LimitOpt = None, as_json: JsonOpt = False
) -> None:
    """List a project's API keys (redacted)."""
    with admin_api(ctx) as api:
        body = api.list_all(f"{project_path(project)}/api_keys", limit=limit)
    emit(body, as_json, keys_table)


@keys_app.command("show")
def show_key(
    ctx: typer.Context,
    project: ProjectArg,
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id (key_...).")],
    as_json: JsonOpt = False,
) -> None:
    """Show one API key (redacted)."""
    with admin_api(ctx) as api:
        body = api.get(f"{project_path(project)}/api_keys/{segment(key_id)}")
    emit(body, as_json, lambda b: keys_table({"data": [b]}))


@keys_app.command("revoke")
def revoke_key(
    ctx: typer.Context,
    project: ProjectArg,
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id (key_...).")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke an API key: it stops working at once."""
    with admin_api(ctx) as api:
        body = api.delete(f"{project_path(project)}/api_keys/{segment(key_id)}")
    emit(body, as_json, lambda b: f"Revoked key {cell(b.get('id'))}.")
