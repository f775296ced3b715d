"""Switchyard's own usage analytics for analysts, answered by metering
(``services.metering.analytics_api``): ``GET /v1/usage/requests``, the request log, one row per
request; and ``GET /v1/usage/query``, any dimension, any bucket, JSON or CSV. The dashboard
(``/dashboard``) reads both."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from services.ingress.deps import PrincipalDep
from services.ingress.metering_proxy import from_metering

router = APIRouter()


@router.get("/v1/usage/requests")
async def usage_requests(request: Request, _: PrincipalDep) -> Response:
    return await from_metering(request, "/v1/usage/requests")


@router.get("/v1/usage/query")
async def usage_query(request: Request, _: PrincipalDep) -> Response:
    return await from_metering(request, "/v1/usage/query")
