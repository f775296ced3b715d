"""``switchyard admin audit``: the organisation's audit log, who changed what, the latest
first."""

from __future__ import annotations

from typing import Annotated

import typer

from services.admin_cli._command import JsonOpt, admin_api
from services.admin_cli._json import Json
from services.admin_cli._output import cell, emit, list_items, table, when

# The log only grows: every event by default would page through all of it.
_AUDIT_DEFAULT_LIMIT = 100


def _actor(event: Json) -> str:
    """The person's email, else the service account's or person's id, else the key's id."""
    actor = event.get("actor")
    if actor is None:
        return "system"  # Switchyard itself: OpenAI's object has no such actor, so null
    if not isinstance(actor, dict):
        return "-"
    detail = actor.get(str(actor.get("type")))
    if not isinstance(detail, dict):
        return cell(actor.get("type"))
    holders = [*(v for v in detail.values() if isinstance(v, dict)), detail]
    for name in ("email", "id"):
        for holder in holders:
            if holder.get(name):
                return str(holder[name])
    return cell(actor.get("type"))


def _audit_table(body: Json) -> str:
    events = list_items(body)
    if not events:
        return "no events"
    rows = []
    for event in events:
        project = event.get("project")
        target = event.get(str(event.get("type")))
        rows.append(
            (
                when(event.get("effective_at")),
                cell(event.get("type")),
                _actor(event),
                cell(project.get("id")) if isinstance(project, dict) else "-",
                cell(target.get("id")) if isinstance(target, dict) else "-",
                cell(event.get("outcome")),
            )
        )
    text = table(("TIME", "TYPE", "ACTOR", "PROJECT", "TARGET", "OUTCOME"), rows)
    if body.get("has_more"):
        text += "\n(more events: raise --limit, or --all)"
    return text


def audit(
    ctx: typer.Context,
    project: Annotated[
        list[str] | None, typer.Option(help="Only events of this project; repeatable.")
    ] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only events of this type (project.created ...); repeatable."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, help="At most N events, the latest first.")
    ] = _AUDIT_DEFAULT_LIMIT,
    every: Annotated[
        bool, typer.Option("--all", help="Every matching event (ignores --limit).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the audit log: who changed what, the latest first.

    The latest 100 events unless --limit or --all says otherwise: the log only grows.
    """
    params = [("project_ids[]", p) for p in project or []]
    params += [("event_types[]", t) for t in event_type or []]
    with admin_api(ctx) as api:
        body = api.list_all("/organization/audit_logs", params, None if every else limit)
    emit(body, as_json, _audit_table)
