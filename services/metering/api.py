"""The metering HTTP API: health, Prometheus metrics and read-only usage analytics.

It is the way in to the numbers when the store is chDB, which only the metering process may
open: ``switchyard usage`` and the dashboard ask here rather than opening the data directory.

Usage rows name tenants, keys, models and costs, so every route but ``/healthz`` and
``/metrics`` requires the admin key, presented as the ingress takes it (``Authorization: Bearer``
or ``x-api-key``). Governance will bring keys scoped to a tenant's own usage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from contracts.errors import ErrorCode
from services.common.admin_key import digest_matches, key_digest, presented_key
from services.metering.metrics import MeteringMetrics
from services.metering.store import GroupBy, SummaryRow, UsageStore
from services.metering.window import InvalidWindowError, parse_window

ConsumerRunning = Callable[[], bool]


class UsageSummary(BaseModel):
    since: str
    by: GroupBy
    rows: list[SummaryRow]


class RequestUsage(BaseModel):
    request_id: str
    rows: list[dict[str, Any]]


def _store(request: Request) -> UsageStore:
    store: UsageStore = request.app.state.store
    return store


StoreDep = Annotated[UsageStore, Depends(_store)]


class NotAuthenticatedError(Exception):
    """A usage route was called without the admin key; answered 401 in OpenAI's error shape."""


async def _require_admin(request: Request) -> None:
    # Compared by digest in constant time, as the ingress does; without a configured key
    # nothing is accepted.
    expected: bytes | None = request.app.state.admin_digest
    key = presented_key(request)
    if key is None:
        raise NotAuthenticatedError(
            "Missing API key: send the admin key as 'Authorization: Bearer <key>' or 'x-api-key'."
        )
    if not digest_matches(key, expected):
        raise NotAuthenticatedError("Incorrect API key provided.")


async def _not_authenticated(_: Request, exc: Exception) -> Response:
    code = ErrorCode.AUTHENTICATION
    body = {"message": str(exc), "type": code.openai_type, "param": None, "code": code.value}
    return JSONResponse({"error": body}, status_code=code.http_status)


def create_app(
    store: UsageStore,
    metrics: MeteringMetrics,
    consumer_running: ConsumerRunning,
    *,
    admin_key: str | None,
) -> FastAPI:
    """``admin_key`` None refuses every usage query (the service itself will not start
    without one; tests may build the app so)."""
    app = FastAPI(title="Switchyard metering", docs_url=None, redoc_url=None)
    app.state.store = store
    app.state.admin_digest = key_digest(admin_key) if admin_key else None
    app.add_exception_handler(NotAuthenticatedError, _not_authenticated)
    usage = APIRouter(prefix="/v1/usage", dependencies=[Depends(_require_admin)])

    @app.get("/healthz")
    async def healthz(store: StoreDep) -> JSONResponse:
        parts = {"consumer": consumer_running(), "store": await store.ping()}
        ok = all(parts.values())
        return JSONResponse({"ok": ok, "parts": parts}, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @usage.get("/summary")
    async def usage_summary(
        store: StoreDep, since: str = "1h", by: GroupBy = GroupBy.MODEL
    ) -> UsageSummary:
        try:
            window = parse_window(since)
        except InvalidWindowError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        return UsageSummary(since=since, by=by, rows=await store.summary(window, by))

    @usage.get("/events")
    async def usage_events(
        store: StoreDep, request_id: Annotated[str, Query(min_length=1)]
    ) -> RequestUsage:
        return RequestUsage(request_id=request_id, rows=await store.events_for(request_id))

    app.include_router(usage)
    return app
