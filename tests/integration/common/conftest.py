"""Fixtures of the shared-state tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.common.redis_outage import RedisOutage


@pytest.fixture
async def outage(redis_url: str) -> AsyncIterator[RedisOutage]:
    proxy = RedisOutage(redis_url)
    await proxy.restore()
    try:
        yield proxy
    finally:
        await proxy.cut()
