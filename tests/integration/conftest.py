"""Clients of the real services that integration tests share (the services themselves are
started by the session fixtures in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from contracts import topics
from services.common.kafka import ensure_topics, make_producer


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    """A producer built like the services' own, with every topic of the registry in place."""
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    client = make_producer(kafka_bootstrap, client_id="test-integration")
    await client.start()
    try:
        yield client
    finally:
        await client.stop()
