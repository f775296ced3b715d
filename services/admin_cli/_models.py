"""``switchyard admin models`` and ``limits``: what a project may do with models, which it may
use (an allow list or a deny list) and how fast (rate limits per model)."""

from __future__ import annotations

from typing import Annotated

import typer

from services.admin_cli._client import AdminClient
from services.admin_cli._command import (
    JsonOpt,
    ProjectArg,
    admin_api,
    command_group,
    project_path,
    segment,
    without_none,
)
from services.admin_cli._errors import AdminError
from services.admin_cli._json import Json
from services.admin_cli._output import cell, emit, list_items, table

models_app = command_group("Which models a project may use: an allow list or a deny list.")
limits_app = command_group("A project's rate limits per model (requests and tokens).")


# -- model permissions --------------------------------------------------------------------------

ModelsArg = Annotated[list[str], typer.Argument(metavar="MODEL...", help="Model ids or aliases.")]


def _permissions_text(body: Json) -> str:
    mode, models = body.get("mode"), body.get("model_ids") or []
    if mode == "allow_list":
        head = "allow list: only these models" if models else "allow list: no model at all"
    elif models:
        head = "deny list: every model but these"
    else:
        head = "every model (no list)"
    return "\n".join([head, *(f"  {model}" for model in models)])


def _set_permissions(
    ctx: typer.Context, project: str, mode: str, models: list[str], as_json: bool
) -> None:
    with admin_api(ctx) as api:
        body = api.post(
            f"{project_path(project)}/model_permissions", {"mode": mode, "model_ids": models}
        )
    emit(body, as_json, _permissions_text)


@models_app.command("allow")
def allow_models(
    ctx: typer.Context, project: ProjectArg, models: ModelsArg, as_json: JsonOpt = False
) -> None:
    """Let the project use these models only (replaces the project's list)."""
    _set_permissions(ctx, project, "allow_list", models, as_json)


@models_app.command("deny")
def deny_models(
    ctx: typer.Context, project: ProjectArg, models: ModelsArg, as_json: JsonOpt = False
) -> None:
    """Let the project use every model but these (replaces the project's list)."""
    _set_permissions(ctx, project, "deny_list", models, as_json)


@models_app.command("show")
def show_models(ctx: typer.Context, project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Show the project's list (ids as canonical provider/model)."""
    with admin_api(ctx) as api:
        body = api.get(f"{project_path(project)}/model_permissions")
    emit(body, as_json, _permissions_text)


@models_app.command("clear")
def clear_models(ctx: typer.Context, project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Remove the project's list: it may use every model."""
    with admin_api(ctx) as api:
        body = api.delete(f"{project_path(project)}/model_permissions")
    emit(body, as_json, lambda _: f"{project} may use every model.")


# -- rate limits --------------------------------------------------------------------------------


def rate_limit_id(model: str) -> str:
    """The id of a project's rate limit for a canonical model id: ``openai/gpt-4o-mini`` ->
    ``rl-openai__gpt-4o-mini``."""
    return "rl-" + model.replace("/", "__")


def _limit(value: object) -> str:
    # The API shows a limit that is not set as 0 (OpenAI's figures are required) or leaves it out.
    return "-" if value in (None, 0) else str(value)


def _limits_table(body: Json) -> str:
    limits = list_items(body)
    if not limits:
        return "no rate limits (- in a column: not limited)"
    rows = [
        (
            cell(r.get("model")),
            _limit(r.get("max_requests_per_1_minute")),
            _limit(r.get("max_tokens_per_1_minute")),
            _limit(r.get("max_requests_per_1_day")),
            cell(r.get("id")),
        )
        for r in limits
    ]
    return table(("MODEL", "RPM", "TPM", "RPD", "ID"), rows, right=(1, 2, 3))


ModelOpt = Annotated[
    str,
    typer.Option(
        help="The model's canonical id (openai/gpt-4o-mini); a bare name (gpt-4o-mini) is"
        " looked up among the project's limits."
    ),
]


@limits_app.command("show")
def show_limits(ctx: typer.Context, project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Show the project's rate limits, one line per model (a model not listed is not limited)."""
    with admin_api(ctx) as api:
        body = api.list_all(f"{project_path(project)}/rate_limits")
    emit(body, as_json, _limits_table)


@limits_app.command("set")
def set_limits(
    ctx: typer.Context,
    project: ProjectArg,
    model: ModelOpt,
    rpm: Annotated[int | None, typer.Option(min=1, help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(min=1, help="Tokens per minute.")] = None,
    rpd: Annotated[int | None, typer.Option(min=1, help="Requests per day.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the project's limits for one model; the limits not given stay as they are."""
    body = without_none(
        {
            "max_requests_per_1_minute": rpm,
            "max_tokens_per_1_minute": tpm,
            "max_requests_per_1_day": rpd,
        }
    )
    if not body:
        raise typer.BadParameter("give at least one of --rpm, --tpm, --rpd")
    limits = f"{project_path(project)}/rate_limits"
    with admin_api(ctx) as api:
        answer = api.post(f"{limits}/{segment(_limit_id(api, limits, model))}", body)
    emit(answer, as_json, lambda b: _limits_table({"data": [b]}))


@limits_app.command("clear")
def clear_limits(
    ctx: typer.Context, project: ProjectArg, model: ModelOpt, as_json: JsonOpt = False
) -> None:
    """Remove the project's limits for one model (Switchyard's addition to the API)."""
    limits = f"{project_path(project)}/rate_limits"
    with admin_api(ctx) as api:
        body = api.delete(f"{limits}/{segment(_limit_id(api, limits, model))}")
    emit(body, as_json, lambda _: f"{project} has no rate limits for {model} now.")


def _limit_id(api: AdminClient, limits: str, model: str) -> str:
    """The limit's id: computed from a canonical id; for a bare name, the id of the one limit
    whose model is ``<provider>/<name>``, else ``rl-<name>``, which the API resolves through
    its catalogue as it would resolve the name in a request."""
    if "/" in model:
        return rate_limit_id(model)
    found = [
        item
        for item in list_items(api.list_all(limits))
        if str(item.get("model", "")).split("/", 1)[-1] == model
    ]
    if len(found) > 1:
        models = ", ".join(cell(item.get("model")) for item in found)
        raise AdminError(f"{model!r} names several models ({models}); give the canonical id")
    if found and isinstance(found[0].get("id"), str):
        return str(found[0]["id"])
    return rate_limit_id(model)
