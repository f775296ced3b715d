"""``/healthz`` (is this process able to serve) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import JSONResponse, Response

from services.ingress.deps import GatewayDep

router = APIRouter()


@router.get("/healthz")
async def healthz(gateway: GatewayDep) -> Response:
    try:
        redis_ok = bool(await gateway.redis.ping())
    except Exception:
        redis_ok = False
    parts = {"kafka": gateway.kafka.up, "redis": redis_ok, "inbox": gateway.inbox.healthy}
    ok = all(parts.values())
    return JSONResponse({"ok": ok, "parts": parts}, status_code=200 if ok else 503)


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
