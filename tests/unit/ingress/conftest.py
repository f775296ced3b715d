"""The ingress app, unstarted: nothing connects until its lifespan runs, and this client never
runs it, so a route can be driven up to the point where it would publish to Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.ingress.app import create_app
from services.ingress.settings import IngressSettings

ADMIN_KEY = "sk-unit-test-admin-key-0123456789"


@pytest.fixture
async def app_client() -> AsyncIterator[httpx.AsyncClient]:
    # Built inside the event loop: the gateway's Kafka producer wants one, though it never starts.
    app = create_app(IngressSettings(admin_key=ADMIN_KEY, max_body_bytes=1024 * 1024))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://ingress",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    ) as client:
        yield client
