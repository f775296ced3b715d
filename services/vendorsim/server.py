"""Runs the simulator under uvicorn, tuned for throughput: uvloop, httptools, no access log.

``serve`` runs it in the foreground (``switchyard vendorsim``); ``serve_in_background`` runs it on
a free local port in a thread, for tests of other services that need a vendor to talk to.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from services.common.gc_tuning import tune_gc
from services.vendorsim.app import VendorSim, create_app
from services.vendorsim.knobs import SimKnobs

_DROP_MESSAGE = "ASGI callable returned without completing response."


class _DeliberateDropFilter(logging.Filter):
    """Hides uvicorn's complaint about a response the app left unfinished: for the simulator
    that is the ``disconnect`` fault working, not a bug, and it would flood the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _DROP_MESSAGE


def serve(host: str = "127.0.0.1", port: int = 8090) -> None:
    _quiet_deliberate_drops()
    tune_gc()
    uvicorn.Server(_config(create_app(), host=host, port=port)).run()


@dataclass(frozen=True, slots=True)
class RunningSim:
    app: VendorSim
    base_url: str  # e.g. ``http://127.0.0.1:43117``; OpenAI clients add ``/v1``


@contextmanager
def serve_in_background(knobs: SimKnobs | None = None) -> Iterator[RunningSim]:
    """Run a simulator on a free 127.0.0.1 port until the block ends."""
    _quiet_deliberate_drops()
    app = create_app(knobs)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(_config(app, host="127.0.0.1", port=port))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="vendorsim", daemon=True
    )
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the vendor simulator failed to start")
            time.sleep(0.005)
        yield RunningSim(app=app, base_url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _config(app: VendorSim, *, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="off",
        access_log=False,
        server_header=False,
        # A benchmark's connections idle between bursts; uvicorn's 5 s default would churn them.
        timeout_keep_alive=30,
        # Sleeping simulated calls (ttft, hangs) must not hold up a stop for long.
        timeout_graceful_shutdown=1,
        log_level="warning",
    )


def _quiet_deliberate_drops() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DeliberateDropFilter) for f in logger.filters):
        logger.addFilter(_DeliberateDropFilter())
