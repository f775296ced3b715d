"""``switchyard admin projects``: create, list, show, rename and archive the organisation's
projects."""

from __future__ import annotations

from typing import Annotated

import typer

from services.admin_cli._command import (
    JsonOpt,
    LimitOpt,
    ProjectArg,
    admin_api,
    command_group,
    project_path,
)
from services.admin_cli._json import Json
from services.admin_cli._output import cell, emit, fields, list_items, table, when

projects_app = command_group("Projects: create, list, show, rename, archive.")


def _projects_table(body: Json) -> str:
    projects = list_items(body)
    if not projects:
        return "no projects"
    rows = [
        (cell(p.get("id")), cell(p.get("name")), cell(p.get("status")), when(p.get("created_at")))
        for p in projects
    ]
    return table(("ID", "NAME", "STATUS", "CREATED"), rows)


def _project_fields(project: Json) -> str:
    return fields(
        [
            ("id", cell(project.get("id"))),
            ("name", cell(project.get("name"))),
            ("status", cell(project.get("status"))),
            ("created", when(project.get("created_at"))),
            ("archived", when(project.get("archived_at"))),
        ]
    )


@projects_app.command("list")
def list_projects(
    ctx: typer.Context,
    include_archived: Annotated[
        bool, typer.Option("--include-archived", help="List archived projects too.")
    ] = False,
    limit: LimitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the organisation's projects, oldest first."""
    params = [("include_archived", "true")] if include_archived else []
    with admin_api(ctx) as api:
        body = api.list_all("/organization/projects", params, limit)
    emit(body, as_json, _projects_table)


@projects_app.command("create")
def create_project(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The project's name.")],
    as_json: JsonOpt = False,
) -> None:
    """Create a project and print it (its id is what the other commands take)."""
    with admin_api(ctx) as api:
        body = api.post("/organization/projects", {"name": name})
    emit(body, as_json, _project_fields)


@projects_app.command("show")
def show_project(ctx: typer.Context, project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Show one project."""
    with admin_api(ctx) as api:
        body = api.get(project_path(project))
    emit(body, as_json, _project_fields)


@projects_app.command("rename")
def rename_project(
    ctx: typer.Context,
    project: ProjectArg,
    name: Annotated[str, typer.Argument(help="The new name.")],
    as_json: JsonOpt = False,
) -> None:
    """Rename a project."""
    with admin_api(ctx) as api:
        body = api.post(project_path(project), {"name": name})
    emit(body, as_json, _project_fields)


@projects_app.command("archive")
def archive_project(ctx: typer.Context, project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Archive a project: its keys stop working at once, and it takes no new ones."""
    with admin_api(ctx) as api:
        body = api.post(f"{project_path(project)}/archive")
    emit(body, as_json, _project_fields)
