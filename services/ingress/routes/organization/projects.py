"""Projects: ``/v1/organization/projects`` (create, list, retrieve, modify, archive).

A project is a team: its keys, members, limits, credit and settings hang off it. Writes go to
the governance topic and return once this replica has applied them
(``services.common.governance``); every other replica applies them as it reads the topic.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from contracts.governance import ProjectRecord
from services.common.access import Permission
from services.ingress.deps import PrincipalDep
from services.ingress.routes.organization._shared import (
    active,
    by_age,
    commit,
    json_object,
    name_in,
    new_id,
    now_s,
    page,
    project_for,
    require,
    view_of,
)

router = APIRouter()


def project_json(project: ProjectRecord) -> dict[str, Any]:
    return {
        "id": project.id,
        "object": "organization.project",
        "name": project.name,
        "created_at": project.created_at,
        "archived_at": project.archived_at,
        "status": "active" if project.active else "archived",
    }


@router.get("/projects")
async def list_projects(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """Every project for organisation readers; a project key or a person's key sees the
    projects it belongs to."""
    visible = principal.projects_with(Permission.PROJECT_READ)
    if visible is not None and not visible:
        require(principal, Permission.PROJECT_READ)
    include_archived = request.query_params.get("include_archived", "false").lower() == "true"
    projects = [
        p
        for p in view_of(request).projects.values()
        if (include_archived or p.active) and (visible is None or p.id in visible)
    ]
    return page(by_age(projects, lambda p: p.created_at), request, project_json, lambda p: p.id)


@router.post("/projects")
async def create_project(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    require(principal, Permission.ORG_WRITE)
    name = name_in(await json_object(request), required=True)
    assert name is not None
    project = ProjectRecord(id=new_id("proj"), name=name, created_at=now_s())
    await commit(
        request,
        principal,
        event="project.created",
        put=[project],
        project=project,
        target_id=project.id,
        details={"name": name},
    )
    return project_json(project)


@router.get("/projects/{project_id}")
async def retrieve_project(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    return project_json(project_for(request, principal, project_id, Permission.PROJECT_READ))


@router.post("/projects/{project_id}")
async def modify_project(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.PROJECT_WRITE)
    name = name_in(await json_object(request), required=False)
    active(project)
    if name is not None:
        project = project.model_copy(update={"name": name})
        await commit(
            request,
            principal,
            event="project.updated",
            put=[project],
            project=project,
            target_id=project.id,
            details={"name": name},
        )
    return project_json(project)


@router.post("/projects/{project_id}/archive")
async def archive_project(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    require(principal, Permission.ORG_WRITE)
    project = project_for(request, principal, project_id, Permission.PROJECT_WRITE)
    if project.active:
        # Its keys stop working on every replica as the record is read (services.common.access).
        project = project.model_copy(update={"archived_at": now_s()})
        await commit(
            request,
            principal,
            event="project.archived",
            put=[project],
            project=project,
            target_id=project.id,
        )
    return project_json(project)
