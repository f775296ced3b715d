"""What metering serves from ClickHouse, passed on by the ingress with the caller's own key, so
that metering checks the same roles (``services.common.access``) and shows only what the key
may see: ``GET /v1/organization/audit_logs``, OpenAI's usage and costs
(``/v1/organization/usage/...``, ``/v1/organization/costs``) and a retaining project's request
logs."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from services.ingress.deps import PrincipalDep
from services.ingress.metering_proxy import from_metering as _from_metering

router = APIRouter()


@router.get("/audit_logs")
async def list_audit_logs(request: Request, _: PrincipalDep) -> Response:
    return await _from_metering(request, "/v1/organization/audit_logs")


@router.get("/usage/completions")
async def usage_completions(request: Request, _: PrincipalDep) -> Response:
    return await _from_metering(request, "/v1/organization/usage/completions")


@router.get("/usage/embeddings")
async def usage_embeddings(request: Request, _: PrincipalDep) -> Response:
    return await _from_metering(request, "/v1/organization/usage/embeddings")


@router.get("/costs")
async def costs(request: Request, _: PrincipalDep) -> Response:
    return await _from_metering(request, "/v1/organization/costs")


@router.get("/projects/{project_id}/request_logs")
async def list_request_logs(project_id: str, request: Request, _: PrincipalDep) -> Response:
    """Switchyard's addition: the prompts and answers a project with ``data_retention`` ``none``
    keeps, for its owners; ``limit``, ``after`` and ``request_id`` as query parameters."""
    # Quoted: the id is the caller's text, and must not walk to another path of metering's.
    return await _from_metering(
        request, f"/v1/organization/projects/{quote(project_id, safe='')}/request_logs"
    )
