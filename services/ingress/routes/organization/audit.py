"""``GET /v1/organization/audit_logs``: served by metering, which owns ClickHouse; the ingress
passes the call on with the caller's own key, so that metering checks the same roles
(``services.common.access``) and shows only the projects the key may audit."""

from __future__ import annotations

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


@router.get("/audit_logs")
async def list_audit_logs(request: Request, _: PrincipalDep) -> Response:
    settings: IngressSettings = request.app.state.settings
    headers = {name: value for name in _PASSED_HEADERS if (value := request.headers.get(name))}
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT_S, trust_env=False) as client:
            answer = await client.get(
                f"{settings.metering_url}/v1/organization/audit_logs",
                params=str(request.query_params),
                headers=headers,
            )
    except httpx.HTTPError as exc:
        raise ApiError(
            ErrorInfo(
                code=ErrorCode.UNAVAILABLE,
                message="The audit log cannot be read right now; try again shortly.",
                retryable=True,
                retry_after_s=2.0,
            )
        ) from exc
    return Response(
        answer.content,
        status_code=answer.status_code,
        media_type=answer.headers.get("content-type", "application/json"),
    )
