"""The ingress application factory: assembles settings, the gateway and the routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from contracts.catalogue import default_catalogue
from services.common import prompt_features
from services.common.access import KeyRing
from services.common.audit import AuditTrail, KeyUseSummary
from services.common.gc_tuning import tune_gc
from services.common.governance import GovernanceFeed, GovernanceWriter
from services.common.routing_config import ConfigWatch
from services.ingress.admission import Admission
from services.ingress.errors import install_error_handlers
from services.ingress.gateway import Gateway
from services.ingress.model_names import ModelNames
from services.ingress.openapi import router as openapi_router
from services.ingress.routes import (
    chat,
    dashboard,
    health,
    models,
    organization,
    providers,
    usage,
)
from services.ingress.settings import IngressSettings
from services.ingress.spend_alerts import SpendAlerts

log = logging.getLogger(__name__)


def create_app(settings: IngressSettings | None = None) -> FastAPI:
    settings = settings or IngressSettings()
    gateway = Gateway(
        settings.kafka_bootstrap, settings.redis_url, publish_timeout_s=settings.publish_timeout_s
    )
    catalogue = default_catalogue()
    config = ConfigWatch(settings.routing_config, catalogue)
    governance = GovernanceFeed(settings.kafka_bootstrap, client_id=f"sy-ingress-{os.getpid()}")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Automatic model choice reads prompts with a tokenizer and two small models: load them
        # before the first request rather than during it (most of two seconds, off the loop).
        if settings.auto_routing:
            try:
                await asyncio.to_thread(prompt_features.warm)
            except prompt_features.FeaturesUnavailable as exc:
                # Named models still work; `auto` requests get a 503 saying why.
                log.error("automatic model choice is unavailable: %s", exc)
        await gateway.start()
        await governance.start()
        await config.start()
        key_uses_task = asyncio.create_task(key_uses.run(), name="key-use-summary")
        try:
            yield
        finally:
            key_uses_task.cancel()  # flushes the last window of key uses
            with contextlib.suppress(asyncio.CancelledError):
                await key_uses_task
            await alerts.stop()
            await trail.drain()
            await config.stop()
            await governance.stop()
            await gateway.stop()

    # FastAPI's generated document is off: the routes read raw bodies, so it would describe none
    # of them. services/ingress/openapi.py serves one written to match what is served.
    app = FastAPI(
        title="Switchyard",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.gateway = gateway
    app.state.catalogue = catalogue
    names = ModelNames(catalogue, config, auto_routing=settings.auto_routing)
    app.state.model_names = names
    admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
    app.state.keys = KeyRing(admin_key, governance.view)
    app.state.governance = GovernanceWriter(gateway.producer, governance)
    trail = AuditTrail(gateway.producer)
    app.state.audit = trail
    key_uses = KeyUseSummary(trail, interval_s=settings.key_use_summary_s)
    app.state.key_uses = key_uses
    alerts = SpendAlerts(
        gateway.redis, governance.view, trail, allow_private=settings.webhook_allow_private
    )
    admission = Admission(gateway.redis, governance.view, names, trail, alerts)
    app.state.admission = admission
    install_error_handlers(app)
    app.include_router(chat.router)
    app.include_router(models.router)
    app.include_router(providers.router)
    app.include_router(organization.router)
    app.include_router(usage.router)
    app.include_router(dashboard.router)
    app.include_router(health.router)
    app.include_router(openapi_router)
    tune_gc()  # here, not in serve(): with several uvicorn workers each process builds its app
    return app
