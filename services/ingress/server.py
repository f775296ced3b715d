"""``switchyard ingress``: run the ingress under uvicorn."""

from __future__ import annotations

import uvicorn

from services.common.ops import configure_logging
from services.ingress.settings import IngressSettings


def serve() -> None:
    settings = IngressSettings()
    configure_logging(settings.log_level)
    if settings.admin_key is None:
        raise SystemExit("SWITCHYARD_ADMIN_KEY is not set; `switchyard up` generates one.")
    uvicorn.run(
        "services.ingress.app:create_app",
        factory=True,
        host=settings.ingress_host,
        port=settings.ingress_port,
        workers=settings.ingress_workers if settings.ingress_workers > 1 else None,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        # Many clients keep connections open between requests (the SDKs pool them).
        timeout_keep_alive=30,
    )
