"""What metering serves from ClickHouse, passed on by the ingress with the caller's own key, so
that metering checks the same roles (``services.common.access``) and shows only what the key
may see: ``GET /v1/organization/audit_logs`` and a retaining project's request logs."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from starlette.responses import Response

from contracts.errors import ErrorCode, ErrorInfo
from services.ingress.deps import PrincipalDep
from services.ingress.errors import ApiError
from services.ingress.settings import IngressSettings

router = APIRouter()

_TIMEOUT_S = 30.0
_PASSED_HEADERS = ("authorization", "x-api-key")


async def _from_metering(request: Request, path: str) -> Response:
    settings: IngressSettings = request.app.state.settings
    headers = {name: value for name in _PASSED_HEADERS if (value := request.headers.get(name))}
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT_S, trust_env=False) as client:
            answer = await client.get(
                f"{settings.metering_url}{path}",
                params=str(request.query_params),
                headers=headers,
            )
    except httpx.HTTPError as exc:
        raise ApiError(
            ErrorInfo(
                code=ErrorCode.UNAVAILABLE,
                message="This cannot be read right now; try again shortly.",
                retryable=True,
                retry_after_s=2.0,
            )
        ) from exc
    return Response(
        answer.content,
        status_code=answer.status_code,
        media_type=answer.headers.get("content-type", "application/json"),
    )


@router.get("/audit_logs")
async def list_audit_logs(request: Request, _: PrincipalDep) -> Response:
    return await _from_metering(request, "/v1/organization/audit_logs")


@router.get("/projects/{project_id}/request_logs")
async def list_request_logs(project_id: str, request: Request, _: PrincipalDep) -> Response:
    """Switchyard's addition: the prompts and answers a project with ``data_retention`` ``none``
    keeps, for its owners; ``limit``, ``after`` and ``request_id`` as query parameters."""
    # Quoted: the id is the caller's text, and must not walk to another path of metering's.
    return await _from_metering(
        request, f"/v1/organization/projects/{quote(project_id, safe='')}/request_logs"
    )
