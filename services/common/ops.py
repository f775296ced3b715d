"""The operations endpoint of the headless services (router, workers): ``/healthz`` and
``/metrics`` on a small HTTP server sharing the service's event loop."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

HealthCheck = Callable[[], dict[str, bool]]


def ops_app(health: HealthCheck) -> Starlette:
    async def healthz(_: Request) -> Response:
        parts = health()
        status = 200 if all(parts.values()) else 503
        return JSONResponse({"ok": status == 200, "parts": parts}, status_code=status)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


def ops_server(health: HealthCheck, *, port: int, host: str = "127.0.0.1") -> uvicorn.Server:
    config = uvicorn.Config(
        ops_app(health), host=host, port=port, access_log=False, log_level="warning", lifespan="off"
    )
    return _EmbeddedServer(config)


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that runs inside a service's loop: the service owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiokafka logs every rebalance step at INFO; keep the service log readable.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
