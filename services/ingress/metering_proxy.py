"""Reads that metering answers from ClickHouse, passed on by the ingress with the caller's own
key: metering checks it with the same roles (``services.common.access``) and shows only what the
key may see. One base URL for callers; one owner of ClickHouse."""

from __future__ import annotations

import httpx
from fastapi import Request
from starlette.responses import Response

from contracts.errors import ErrorCode, ErrorInfo
from services.ingress.errors import ApiError
from services.ingress.settings import IngressSettings

_TIMEOUT_S = 30.0
_PASSED_HEADERS = ("authorization", "x-api-key")


async def from_metering(request: Request, path: str) -> Response:
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
    passed = {k: v for k, v in answer.headers.items() if k.lower().startswith("x-switchyard-")}
    return Response(
        answer.content,
        status_code=answer.status_code,
        media_type=answer.headers.get("content-type", "application/json"),
        headers=passed,
    )
