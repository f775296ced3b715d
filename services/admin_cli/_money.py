"""``switchyard admin spend-limit`` and ``credit``: what a project may spend, as a hard limit
per calendar month and as prepaid credit."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer

from services.admin_cli._command import (
    JsonOpt,
    ProjectArg,
    admin_api,
    command_group,
    project_path,
    without_none,
)
from services.admin_cli._json import Json
from services.admin_cli._output import cell, dollars, emit, table, when
from services.admin_cli._values import decimal_text, parse_amount, parse_usd, usd_to_cents

spend_limit_app = command_group("A project's monthly hard spend limit, in USD.")
credit_app = command_group("A project's prepaid credit: balance, grants, top-ups.")


# -- spend limit --------------------------------------------------------------------------------


def _spend_limit_text(body: Json) -> str:
    cents = body.get("threshold_amount")
    enforcement = body.get("enforcement")
    status = enforcement.get("status") if isinstance(enforcement, dict) else None
    # Without a limit the API answers a threshold of 0 that is not enforced.
    if cents is None or status == "inactive":
        return "no spend limit"
    text = f"{dollars(cents)} {cell(body.get('currency'))} per {cell(body.get('interval'))}"
    return f"{text} ({status})" if status else text


@spend_limit_app.command("show")
def show_spend_limit(ctx: typer.Context, project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Show the project's monthly spend limit."""
    with admin_api(ctx) as api:
        body = api.get(f"{project_path(project)}/spend_limit")
    emit(body, as_json, _spend_limit_text)


@spend_limit_app.command("set")
def set_spend_limit(
    ctx: typer.Context,
    project: ProjectArg,
    usd: Annotated[
        Decimal,
        typer.Option(
            parser=parse_usd, metavar="DOLLARS", help="The limit per month, in whole cents."
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Set (or replace) the project's hard spend limit per calendar month."""
    body = {"threshold_amount": usd_to_cents(usd), "currency": "USD", "interval": "month"}
    with admin_api(ctx) as api:
        answer = api.post(f"{project_path(project)}/spend_limit", body)
    emit(answer, as_json, _spend_limit_text)


@spend_limit_app.command("clear")
def clear_spend_limit(ctx: typer.Context, project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Remove the project's spend limit."""
    with admin_api(ctx) as api:
        body = api.delete(f"{project_path(project)}/spend_limit")
    emit(body, as_json, lambda _: f"{project} has no spend limit now.")


# -- credit -------------------------------------------------------------------------------------


def _credit_text(body: Json) -> str:
    currency = cell(body.get("currency"))
    names = ("granted", "spent", "held", "available", "month_spent")
    balance = [(name, cell(body.get(name))) for name in names if name in body]
    width = max((len(value) for _, value in balance), default=0)
    lines = [f"credit of {cell(body.get('project_id'))} ({currency})"]
    lines += [f"  {name:<11}  {value.rjust(width)}" for name, value in balance]
    if body.get("prepaid") is False:
        lines.append("  not prepaid (no grant yet): credit does not stop its calls")
    grants = [g for g in body.get("grants") or [] if isinstance(g, dict)]
    if grants:
        rows = [
            (
                cell(g.get("id")),
                cell(g.get("amount")),
                when(g.get("created_at")),
                cell(g.get("note")),
            )
            for g in grants
        ]
        lines += ["", table(("GRANT", "AMOUNT", "CREATED", "NOTE"), rows, right=(1,))]
    return "\n".join(lines)


@credit_app.command("show")
def show_credit(ctx: typer.Context, project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Show the project's prepaid credit: granted, spent, held by calls in flight, available;
    and its grants."""
    with admin_api(ctx) as api:
        body = api.get(f"{project_path(project)}/credit")
    emit(body, as_json, _credit_text)


@credit_app.command("topup")
def top_up_credit(
    ctx: typer.Context,
    project: ProjectArg,
    amount: Annotated[
        Decimal,
        typer.Argument(parser=parse_amount, metavar="DOLLARS", help="USD: 10, 10.50."),
    ],
    note: Annotated[str | None, typer.Option(help="Why (kept with the grant).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Grant the project prepaid credit."""
    if amount <= 0:
        raise typer.BadParameter("must be above zero", param_hint="DOLLARS")
    body = without_none({"amount": decimal_text(amount), "note": note})
    with admin_api(ctx) as api:
        grant = api.post(f"{project_path(project)}/credit/grants", body)
    emit(
        grant,
        as_json,
        lambda g: f"Granted {cell(g.get('amount'))} USD to {project} (grant {cell(g.get('id'))}).",
    )
