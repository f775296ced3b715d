"""The routes of OpenAI's Usage and Costs API on the metering service: ``GET
/v1/organization/usage/completions``, ``/v1/organization/usage/embeddings`` and
``/v1/organization/costs``, at exactly OpenAI's paths, so tools that read OpenAI's usage read
Switchyard's unchanged. What the answers mean is ``services.metering.openai_usage``'s to say.

``router`` is included by the metering app (``app.include_router(router)``); the app provides the
store (``app.state.store``) and answers the scope dependency's 401 and 403 (``api.usage_scope``:
a key needs ``api.usage.read``, and sees only the projects it holds it in).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from services.metering.api import StoreDep, UsageScope
from services.metering.openai_usage import (
    InvalidUsageQueryError,
    UsageKind,
    error_body,
    parse_usage_query,
    read_usage,
    render_json,
)
from services.metering.store import UsageStore

router = APIRouter(prefix="/v1/organization")


@router.get("/usage/completions")
async def usage_completions(request: Request, store: StoreDep, scope: UsageScope) -> Response:
    return await _answer(request, store, scope, UsageKind.COMPLETIONS)


@router.get("/usage/embeddings")
async def usage_embeddings(request: Request, store: StoreDep, scope: UsageScope) -> Response:
    return await _answer(request, store, scope, UsageKind.EMBEDDINGS)


@router.get("/costs")
async def costs(request: Request, store: StoreDep, scope: UsageScope) -> Response:
    return await _answer(request, store, scope, UsageKind.COSTS)


async def _answer(
    request: Request, store: UsageStore, scope: frozenset[str] | None, kind: UsageKind
) -> Response:
    # Read by hand rather than as FastAPI parameters: OpenAI's bracketed list names
    # (``project_ids[]``) and its 400 error shape, where FastAPI would answer 422 in its own.
    # The scope was resolved first, so a caller without a valid key learns nothing from a 400.
    params = {name: request.query_params.getlist(name) for name in request.query_params}
    try:
        query = parse_usage_query(kind, params, now_s=int(time.time()))
    except InvalidUsageQueryError as exc:
        return JSONResponse(error_body(exc), status_code=400)
    page = await read_usage(store, query, visible_projects=scope)
    # Written by hand: costs are Decimals, and JSONResponse would pass them through a float.
    return Response(render_json(page.to_json()), media_type="application/json")
