"""The metering HTTP API: health, Prometheus metrics, read-only usage analytics and the audit
trail (OpenAI's ``GET /v1/organization/audit_logs``).

It is the way in to the numbers when the store is chDB, which only the metering process may
open: ``switchyard usage`` and the dashboard ask here rather than opening the data directory.

Usage rows name tenants, keys, models and costs, so every route but ``/healthz`` and
``/metrics`` requires a key, presented as the ingress takes it (``Authorization: Bearer`` or
``x-api-key``), checked against the same governance state and roles as at the ingress
(``services.common.access``): usage needs ``api.usage.read`` and the audit trail
``api.audit_logs.read``, and a key sees only the projects it holds that permission in (a project
key: its own project). Who may read what comes from one dependency per kind, ``usage_scope`` and
``audit_scope``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from contracts.errors import ErrorCode
from services.common.access import KeyRing, Permission, Principal
from services.common.admin_key import presented_key
from services.common.governance import GovernanceView
from services.metering.audit_params import InvalidAuditQueryError, parse_audit_query
from services.metering.audit_render import render_list
from services.metering.audit_store import AuditStore, CursorNotFoundError
from services.metering.metrics import MeteringMetrics
from services.metering.request_log import MAX_LIMIT as MAX_LOG_PAGE
from services.metering.request_log import RequestLogStore
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


def _audit_store(request: Request) -> AuditStore:
    store: AuditStore = request.app.state.audit_store
    return store


AuditStoreDep = Annotated[AuditStore, Depends(_audit_store)]


class NotAuthenticatedError(Exception):
    """No key, or one that is not valid; answered 401 in OpenAI's error shape."""


class PermissionDeniedError(Exception):
    """A valid key without the permission the route needs; answered 403."""


async def _principal(request: Request) -> Principal:
    keys: KeyRing = request.app.state.keys
    key = presented_key(request)
    if key is None:
        raise NotAuthenticatedError(
            "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key'."
        )
    principal = keys.authenticate(key)
    if principal is None:
        raise NotAuthenticatedError("Incorrect API key provided.")
    return principal


def _scope(principal: Principal, permission: Permission) -> frozenset[str] | None:
    visible = principal.projects_with(permission)
    if visible is not None and not visible:
        raise PermissionDeniedError(f"This key lacks the permission '{permission.value}'.")
    return visible


async def usage_scope(request: Request) -> frozenset[str] | None:
    """The projects whose usage the caller may read; None: every project."""
    return _scope(await _principal(request), Permission.USAGE_READ)


async def audit_scope(request: Request) -> frozenset[str] | None:
    """The projects whose audit events the caller may read; None: every event, the
    organisation's own included."""
    return _scope(await _principal(request), Permission.AUDIT_READ)


AuditScope = Annotated[frozenset[str] | None, Depends(audit_scope)]
UsageScope = Annotated[frozenset[str] | None, Depends(usage_scope)]


async def _not_authenticated(_: Request, exc: Exception) -> Response:
    code = ErrorCode.AUTHENTICATION
    body = {"message": str(exc), "type": code.openai_type, "param": None, "code": code.value}
    return JSONResponse({"error": body}, status_code=code.http_status)


async def _permission_denied(_: Request, exc: Exception) -> Response:
    code = ErrorCode.PERMISSION_DENIED
    body = {"message": str(exc), "type": code.openai_type, "param": None, "code": code.value}
    return JSONResponse({"error": body}, status_code=code.http_status)


async def _invalid_audit_query(_: Request, exc: Exception) -> Response:
    code = ErrorCode.INVALID_REQUEST
    param = exc.param if isinstance(exc, InvalidAuditQueryError) else None
    body = {"message": str(exc), "type": code.openai_type, "param": param, "code": code.value}
    return JSONResponse({"error": body}, status_code=code.http_status)


def create_app(
    store: UsageStore,
    metrics: MeteringMetrics,
    consumer_running: ConsumerRunning,
    *,
    admin_key: str | None,
    governance: GovernanceView | None = None,
) -> FastAPI:
    """``admin_key`` None and no ``governance`` refuse every query (the service itself will
    not start without a key; tests may build the app so)."""
    app = FastAPI(title="Switchyard metering", docs_url=None, redoc_url=None)
    app.state.store = store
    app.state.audit_store = AuditStore(store)
    app.state.request_logs = RequestLogStore(store)
    app.state.keys = KeyRing(admin_key, governance)
    app.add_exception_handler(NotAuthenticatedError, _not_authenticated)
    app.add_exception_handler(PermissionDeniedError, _permission_denied)
    app.add_exception_handler(InvalidAuditQueryError, _invalid_audit_query)
    usage = APIRouter(prefix="/v1/usage")

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
        store: StoreDep, scope: UsageScope, since: str = "1h", by: GroupBy = GroupBy.MODEL
    ) -> UsageSummary:
        try:
            window = parse_window(since)
        except InvalidWindowError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        rows = await store.summary(window, by, tenants=scope)
        return UsageSummary(since=since, by=by, rows=rows)

    @usage.get("/events")
    async def usage_events(
        store: StoreDep, scope: UsageScope, request_id: Annotated[str, Query(min_length=1)]
    ) -> RequestUsage:
        rows = await store.events_for(request_id, tenants=scope)
        return RequestUsage(request_id=request_id, rows=rows)

    @app.get("/v1/organization/audit_logs")
    async def list_audit_logs(
        request: Request, audit: AuditStoreDep, scope: AuditScope
    ) -> JSONResponse:
        # Read by hand rather than as FastAPI parameters: OpenAI's bracketed names and its
        # 400 error shape, where FastAPI would answer 422 in its own.
        params = {name: request.query_params.getlist(name) for name in request.query_params}
        query = parse_audit_query(params)
        try:
            page = await audit.list_events(query, visible_projects=scope)
        except CursorNotFoundError as exc:
            raise InvalidAuditQueryError(exc.param, str(exc)) from exc
        return JSONResponse(render_list(page))

    @app.get("/v1/organization/projects/{project_id}/request_logs")
    async def list_request_logs(project_id: str, request: Request) -> JSONResponse:
        """Switchyard's addition: a retaining project's request logs, for its owners only."""
        principal = await _principal(request)
        if not principal.can(Permission.PROJECT_WRITE, project_id):
            raise PermissionDeniedError(
                f"Only the owners of project '{project_id}' may read its request logs."
            )
        raw_limit = request.query_params.get("limit", "20")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LOG_PAGE:
            raise InvalidAuditQueryError("limit", f"'limit' must be from 1 to {MAX_LOG_PAGE}.")
        logs: RequestLogStore = request.app.state.request_logs
        page = await logs.page(
            project_id,
            limit=int(raw_limit),
            after=request.query_params.get("after"),
            request_id=request.query_params.get("request_id"),
        )
        return JSONResponse(
            {
                "object": "list",
                "data": page.entries,
                "first_id": page.entries[0]["id"] if page.entries else None,
                "last_id": page.entries[-1]["id"] if page.entries else None,
                "has_more": page.has_more,
            }
        )

    app.include_router(usage)
    # Imported here: the routers take their dependencies from this module.
    from services.metering import analytics_api, openai_usage_api

    app.include_router(openai_usage_api.router)
    app.include_router(analytics_api.router)
    return app
