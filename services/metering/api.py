"""The metering HTTP API: health, Prometheus metrics and read-only usage analytics.

It is the way in to the numbers when the store is chDB, which only the metering process may
open: ``switchyard usage`` and the dashboard ask here rather than opening the data directory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

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


def create_app(
    store: UsageStore, metrics: MeteringMetrics, consumer_running: ConsumerRunning
) -> FastAPI:
    app = FastAPI(title="Switchyard metering", docs_url=None, redoc_url=None)
    app.state.store = store

    @app.get("/healthz")
    async def healthz(store: StoreDep) -> JSONResponse:
        parts = {"consumer": consumer_running(), "store": await store.ping()}
        ok = all(parts.values())
        return JSONResponse({"ok": ok, "parts": parts}, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/usage/summary")
    async def usage_summary(
        store: StoreDep, since: str = "1h", by: GroupBy = GroupBy.MODEL
    ) -> UsageSummary:
        try:
            window = parse_window(since)
        except InvalidWindowError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        return UsageSummary(since=since, by=by, rows=await store.summary(window, by))

    @app.get("/v1/usage/events")
    async def usage_events(
        store: StoreDep, request_id: Annotated[str, Query(min_length=1)]
    ) -> RequestUsage:
        return RequestUsage(request_id=request_id, rows=await store.events_for(request_id))

    return app
