"""The metering service process: ``switchyard metering``.

Assembles the parts and runs them until SIGTERM: opens the store and applies migrations, makes
sure the usage, audit and dead-letter topics exist, starts the batch consumers (usage and audit)
and serves the HTTP API. On SIGTERM each consumer finishes and commits the batch in hand before
the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator

import uvicorn

from contracts.catalogue import default_catalogue
from contracts.topics import AUDIT, DLQ, GOVERNANCE, REQUEST_LOG, USAGE
from services.common.gc_tuning import tune_gc
from services.common.governance import GovernanceFeed
from services.common.kafka import ensure_topics
from services.common.ops import configure_logging
from services.common.redis_client import connect_redis
from services.common.runtime import run_until_signalled
from services.metering.api import create_app
from services.metering.audit_consumer import AuditConsumer, AuditMetrics, AuditRecorder
from services.metering.audit_store import AuditStore
from services.metering.consumer import UsageConsumer
from services.metering.ledger import LedgerKeeper
from services.metering.metrics import MeteringMetrics
from services.metering.recorder import UsageRecorder
from services.metering.request_log import RequestLogStore, request_log_consumer
from services.metering.retention import apply_usage_retention
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
    """Run until ``stop`` is set, or until a consumer dies (so a supervisor restarts us
    rather than leaving a process that answers HTTP but meters or audits nothing)."""
    metrics = MeteringMetrics()
    store = await asyncio.to_thread(UsageStore.connect, settings.clickhouse_dsn)
    try:
        applied = await store.migrate()
        if applied:
            log.info("migrations applied: %s", ", ".join(f"{m.version:04d}" for m in applied))
        retention = settings.usage_retention_days
        await store.on_client(lambda client: apply_usage_retention(client, retention))
        await ensure_topics(settings.kafka_bootstrap, [USAGE, AUDIT, DLQ, GOVERNANCE, REQUEST_LOG])
        # Keys and roles, to scope what each caller reads (services.metering.api).
        governance = GovernanceFeed(
            settings.kafka_bootstrap, client_id=f"sy-metering-{os.getpid()}"
        )
        await governance.start()
        redis = connect_redis(settings.redis_url)
        keeper = LedgerKeeper(store, redis)
        consumer = UsageConsumer(
            bootstrap=settings.kafka_bootstrap,
            recorder=UsageRecorder(store, default_catalogue(), metrics, keeper),
            metrics=metrics,
            group_id=settings.metering_consumer_group,
            batch_max_events=settings.metering_batch_max_events,
            batch_max_wait_ms=settings.metering_batch_max_wait_ms,
        )
        audit_metrics = AuditMetrics(metrics.registry)
        audit_consumer = AuditConsumer(
            bootstrap=settings.kafka_bootstrap,
            recorder=AuditRecorder(AuditStore(store), audit_metrics),
            metrics=audit_metrics,
            group_id=settings.metering_audit_consumer_group,
            batch_max_events=settings.metering_batch_max_events,
            batch_max_wait_ms=settings.metering_batch_max_wait_ms,
        )
        log_consumer = request_log_consumer(
            bootstrap=settings.kafka_bootstrap,
            store=RequestLogStore(store),
            registry=metrics.registry,
            batch_max_events=settings.metering_batch_max_events,
            batch_max_wait_ms=settings.metering_batch_max_wait_ms,
        )
        admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
        app = create_app(
            store,
            metrics,
            lambda: consumer.running and audit_consumer.running and log_consumer.running,
            admin_key=admin_key,
            governance=governance.view,
        )
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
        try:
            await audit_consumer.start()
            await log_consumer.start()
        except BaseException:
            await consumer.stop()
            await audit_consumer.stop()
            raise
        server_task = asyncio.create_task(server.serve(), name="metering-http")
        keeper_task = asyncio.create_task(keeper.run(), name="credit-ledger-keeper")
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait(
                [
                    stopper,
                    server_task,
                    asyncio.create_task(consumer.wait()),
                    asyncio.create_task(audit_consumer.wait()),
                    asyncio.create_task(log_consumer.wait()),
                ],
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stopper.cancel()
            try:
                try:
                    await consumer.stop()  # re-raises the error a dead consumer died of
                finally:
                    await audit_consumer.stop()
                    await log_consumer.stop()
            finally:
                keeper_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper_task
                server.should_exit = True
                await server_task
                await governance.stop()
                await redis.aclose()
        log.info("metering stopped")
    finally:
        await asyncio.to_thread(store.close)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: signals belong to the service, which stops the consumer first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
