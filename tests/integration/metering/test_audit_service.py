"""The metering process as ``switchyard metering`` runs it, against the real Kafka: it consumes
``sy.audit.v1`` beside the usage topic, and an audited admin action is listed by its API."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.audit import AuditActor, AuditEvent, AuditEventType
from services.common.audit import AuditTrail
from services.common.kafka import make_producer
from services.metering.service import run
from services.metering.settings import MeteringSettings

pytestmark = pytest.mark.integration

ADMIN_KEY = "sy-admin-test-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_service_audits_beside_metering(kafka_bootstrap: str, tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex[:8]
    settings = MeteringSettings(
        kafka_bootstrap=kafka_bootstrap,
        clickhouse_dsn=f"chdb://{tmp_path / 'chdb'}",
        metering_port=free_port(),
        admin_key=ADMIN_KEY,
        metering_consumer_group=f"sy-metering-svc-{run_id}",
        metering_audit_consumer_group=f"sy-metering-audit-svc-{run_id}",
    )
    stop = asyncio.Event()
    service = asyncio.create_task(run(settings, stop))
    event = AuditEvent(
        type=AuditEventType.PROJECT_ARCHIVED,
        project_id=f"proj-{run_id}",
        actor=AuditActor(type="api_key", api_key_id="key_admin", api_key_type="admin"),
        target_id=f"proj-{run_id}",
    )
    producer = make_producer(kafka_bootstrap, client_id="test-audit-service")
    await producer.start()
    try:
        await AuditTrail(producer).record(event)  # on the real topic, sy.audit.v1
    finally:
        await producer.stop()

    try:
        async with httpx.AsyncClient(
            base_url=settings.metering_url,
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
            trust_env=False,
        ) as client:
            listed = await _poll(client, f"proj-{run_id}")
            health = await client.get("/healthz")
    finally:
        stop.set()
        async with asyncio.timeout(60):
            await service

    assert listed == [
        {
            "id": event.id,
            "type": "project.archived",
            "effective_at": event.effective_at,
            "project": {"id": f"proj-{run_id}"},
            "actor": {"type": "api_key", "api_key": {"id": "key_admin"}},
            "project.archived": {"id": f"proj-{run_id}"},
            "outcome": "success",
        }
    ]
    assert health.json() == {"ok": True, "parts": {"consumer": True, "store": True}}


async def _poll(client: httpx.AsyncClient, project_id: str) -> list[dict[str, Any]]:
    async with asyncio.timeout(60):
        while True:
            try:
                response = await client.get(
                    "/v1/organization/audit_logs", params={"project_ids[]": project_id}
                )
            except httpx.TransportError:  # not listening yet
                response = None
            if response is not None and response.json()["data"]:
                data: list[dict[str, Any]] = response.json()["data"]
                return data
            await asyncio.sleep(0.1)
