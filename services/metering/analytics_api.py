"""The analysts' own routes on the metering service: ``GET /v1/usage/requests`` (the request log,
one row per request, newest first, paged by an opaque cursor) and ``GET /v1/usage/query`` (any
dimension, any bucket, chosen metrics, as JSON or CSV). What the answers mean is
``services.metering.analytics``'s to say.

``router`` is included by the metering app (``app.include_router(router)``); the app provides the
store (``app.state.store``) and answers the scope dependency's 401 and 403 (``api.usage_scope``:
a key needs ``api.usage.read`` and sees only the projects it holds it in). Parameters are read
by hand rather than by FastAPI, so that a bad one is a 400 in OpenAI's error shape (FastAPI
would answer 422 in its own), and only after the scope: a caller without a valid key learns
nothing from a 400.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from contracts.errors import ErrorCode
from services.metering.analytics import (
    InvalidAnalyticsQueryError,
    OutputFormat,
    Params,
    parse_log_query,
    parse_usage_query,
    render_csv,
    render_log_page,
    render_query,
    request_log,
    run_query,
)
from services.metering.api import StoreDep, UsageScope

SOURCE_HEADER = "x-switchyard-source"  # which table answered: usage_hour or usage_events

router = APIRouter(prefix="/v1/usage")


@router.get("/requests")
async def list_requests(request: Request, store: StoreDep, scope: UsageScope) -> Response:
    try:
        query = parse_log_query(_params(request), now=datetime.now(UTC))
    except InvalidAnalyticsQueryError as exc:
        return _invalid(exc)
    page = await request_log(store, query, scope=scope)
    return JSONResponse(render_log_page(page))


@router.get("/query")
async def query_usage(request: Request, store: StoreDep, scope: UsageScope) -> Response:
    try:
        query, output = parse_usage_query(_params(request), now=datetime.now(UTC))
    except InvalidAnalyticsQueryError as exc:
        return _invalid(exc)
    result = await run_query(store, query, scope=scope)
    headers = {SOURCE_HEADER: result.source.value}
    if output is OutputFormat.CSV:
        return Response(
            render_csv(query.columns, result.rows),
            media_type="text/csv; charset=utf-8",
            # CSV has no place for it: a header says the rows stop at the limit.
            headers={**headers, "x-switchyard-has-more": str(result.has_more).lower()},
        )
    return JSONResponse(render_query(result), headers=headers)


def _params(request: Request) -> Params:
    return {name: request.query_params.getlist(name) for name in request.query_params}


def _invalid(exc: InvalidAnalyticsQueryError) -> Response:
    code = ErrorCode.INVALID_REQUEST
    body: dict[str, Any] = {
        "message": str(exc),
        "type": code.openai_type,
        "param": exc.param,
        "code": code.value,
    }
    return JSONResponse({"error": body}, status_code=code.http_status)
