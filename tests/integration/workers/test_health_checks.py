"""Active health checks against a real simulator and a closed port, recording on the provider's
circuit in the real Redis."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from services.common.circuits import Circuits, CircuitSnapshot, CircuitState, provider_circuit
from services.common.routing_config import RoutingConfig
from services.vendorsim.server import serve_in_background
from services.workers.health_checks import HealthChecks, checkable
from services.workers.providers.base import ProviderEndpoint
from services.workers.providers.registry import endpoint_for

pytestmark = pytest.mark.integration

CONFIG = RoutingConfig.model_validate(
    {"circuit": {"failures": 2, "window_s": 30, "cooldown_s": 60, "probes": 1}}
)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def checks(
    redis: aioredis.Redis, session: aiohttp.ClientSession, endpoints: dict[str, ProviderEndpoint]
) -> tuple[HealthChecks, Circuits]:
    circuits = Circuits(redis, CONFIG.circuit_policy)
    health = HealthChecks(
        instance_id="test",
        endpoints=endpoints,
        session=session,
        redis=redis,
        circuits=circuits,
        snapshot=CircuitSnapshot(circuits),
        config=lambda: CONFIG,
    )
    return health, circuits


async def test_checks_pass_against_the_simulator_for_both_protocols(
    redis: aioredis.Redis, session: aiohttp.ClientSession
) -> None:
    with serve_in_background() as sim:
        endpoints = {p: endpoint_for(p, {}, sim.base_url) for p in ("openai", "anthropic")}
        health, _ = checks(redis, session, endpoints)
        assert await health.check("openai", endpoints["openai"])
        assert await health.check("anthropic", endpoints["anthropic"])


async def test_failing_checks_open_the_providers_own_circuit(
    redis: aioredis.Redis, session: aiohttp.ClientSession
) -> None:
    # A provider name of its own, so its circuit is this test's alone.
    provider = "deepseek"
    endpoint = ProviderEndpoint(
        provider=provider,
        base_url=f"http://127.0.0.1:{closed_port()}/v1",
        api_key="sk-test",
        simulated=False,
    )
    health, circuits = checks(redis, session, {provider: endpoint})
    key = provider_circuit(provider)
    await circuits.reset(key)
    try:
        assert not await health.check(provider, endpoint)
        assert not await health.check(provider, endpoint)
        assert (await circuits.views([key]))[key].state is CircuitState.OPEN
    finally:
        await circuits.reset(key)


def test_a_real_vendor_without_a_key_is_never_checked() -> None:
    keyless = ProviderEndpoint(
        provider="openai", base_url="http://10.0.0.1/v1", api_key=None, simulated=False
    )
    keyed = ProviderEndpoint(
        provider="openai",
        base_url="http://10.0.0.1/v1",
        api_key=f"sk-{uuid.uuid4().hex}",
        simulated=False,
    )
    simulated = endpoint_for("openai", {}, "http://127.0.0.1:1")
    assert not checkable(keyless)
    assert checkable(keyed)
    assert checkable(simulated)
