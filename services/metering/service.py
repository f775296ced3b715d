"""The metering service process: ``switchyard metering``.

Assembles the parts and runs them until SIGTERM: opens the store and applies migrations, makes
sure the usage and dead-letter topics exist, starts the batch consumer and serves the HTTP API.
On SIGTERM the consumer finishes and commits the batch in hand before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn

from contracts.catalogue import default_catalogue
from contracts.topics import DLQ, USAGE
from services.common.gc_tuning import tune_gc
from services.common.kafka import ensure_topics
from services.common.ops import configure_logging
from services.common.runtime import run_until_signalled
from services.metering.api import create_app
from services.metering.consumer import UsageConsumer
from services.metering.metrics import MeteringMetrics
from services.metering.recorder import UsageRecorder
from services.metering.settings import MeteringSettings
from services.metering.store import UsageStore

log = logging.getLogger(__name__)


def serve() -> None:
    settings = MeteringSettings()
    configure_logging(settings.log_level)
    if settings.admin_key is None:
        raise SystemExit("SWITCHYARD_ADMIN_KEY is not set; `switchyard up` generates one.")
    tune_gc()
    run_until_signalled(lambda stop: run(settings, stop))


async def run(settings: MeteringSettings, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set, or until the consumer dies (so a supervisor restarts us
    rather than leaving a process that answers HTTP but meters nothing)."""
    metrics = MeteringMetrics()
    store = await asyncio.to_thread(UsageStore.connect, settings.clickhouse_dsn)
    try:
        applied = await store.migrate()
        if applied:
            log.info("migrations applied: %s", ", ".join(f"{m.version:04d}" for m in applied))
        await ensure_topics(settings.kafka_bootstrap, [USAGE, DLQ])
        consumer = UsageConsumer(
            bootstrap=settings.kafka_bootstrap,
            recorder=UsageRecorder(store, default_catalogue(), metrics),
            metrics=metrics,
            group_id=settings.metering_consumer_group,
            batch_max_events=settings.metering_batch_max_events,
            batch_max_wait_ms=settings.metering_batch_max_wait_ms,
        )
        admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
        app = create_app(store, metrics, lambda: consumer.running, admin_key=admin_key)
        server = _EmbeddedServer(
            uvicorn.Config(
                app,
                host=settings.metering_host,
                port=settings.metering_port,
                access_log=False,
                lifespan="off",
            )
        )
        await consumer.start()
        server_task = asyncio.create_task(server.serve(), name="metering-http")
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait(
                [stopper, server_task, asyncio.create_task(consumer.wait())],
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stopper.cancel()
            try:
                await consumer.stop()  # re-raises the error a dead consumer died of
            finally:
                server.should_exit = True
                await server_task
        log.info("metering stopped")
    finally:
        await asyncio.to_thread(store.close)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: signals belong to the service, which stops the consumer first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
