"""Active health checks: a cheap call (listing the models) to a provider on an interval, so a
provider that went down is noticed before callers are sent to it, and one that came back is
closed again without waiting for traffic.

Optional per provider (``health_check`` in the routing config). Every replica runs the loop, but
a Redis lock lets one replica check per interval, so adding replicas adds no vendor calls. A
check goes only to the simulator or to a vendor whose API key is set: a real vendor without a
key would answer 401 and look down when it is not.

A check feeds the provider's own circuit (``services.common.circuits.provider_circuit``): its
failures count like failed requests, and while that circuit is open no request goes to any of
the provider's models. When the circuit is half-open the check is one of its probes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import aiohttp
import redis.asyncio as aioredis

from services.common.circuits import Circuits, CircuitSnapshot, CircuitState, provider_circuit
from services.common.periodic import Periodic
from services.common.redis_client import REDIS_DOWN
from services.common.routing_config import RoutingConfig
from services.workers.providers.base import ProviderEndpoint
from services.workers.providers.registry import adapter_for

log = logging.getLogger(__name__)

_IDLE_S = 1.0  # how often the loop looks whether a provider's check is due
_CHECK_TIMEOUT_S = 10.0


def checkable(endpoint: ProviderEndpoint) -> bool:
    return endpoint.simulated or endpoint.api_key is not None


class HealthChecks:
    def __init__(
        self,
        *,
        instance_id: str,
        endpoints: Mapping[str, ProviderEndpoint],
        session: aiohttp.ClientSession,
        redis: aioredis.Redis,
        circuits: Circuits,
        snapshot: CircuitSnapshot,
        config: Callable[[], RoutingConfig],
    ) -> None:
        self._instance_id = instance_id
        self._endpoints = {p: e for p, e in endpoints.items() if checkable(e)}
        self._session = session
        self._redis = redis
        self._circuits = circuits
        self._snapshot = snapshot
        self._config = config
        self._loop = Periodic("health-checks", _IDLE_S, self._due_checks)

    async def start(self) -> None:
        if self._endpoints:
            await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _due_checks(self) -> None:
        for provider, endpoint in self._endpoints.items():
            check = self._config().provider(provider).health_check
            if check is None:
                continue
            try:
                if await self._claim(provider, check.interval_s):
                    await self.check(provider, endpoint)
            except REDIS_DOWN:
                pass  # no claims, no circuits: wait for Redis

    async def _claim(self, provider: str, interval_s: float) -> bool:
        """This replica's turn: the first to set the key in an interval checks."""
        claimed = await self._redis.set(
            f"sy:hc:{provider}", self._instance_id, nx=True, px=int(interval_s * 1000)
        )
        return bool(claimed)

    async def check(self, provider: str, endpoint: ProviderEndpoint) -> bool:
        """One check, recorded on the provider's circuit; returns whether it passed."""
        key = provider_circuit(provider)
        probe = False
        if self._snapshot.state(key) is not CircuitState.CLOSED:
            admission = await self._circuits.admit(key)
            if not admission.allowed:
                return False  # still cooling down, or probes already out
            probe = admission.probe
        url, headers = adapter_for(provider).health_probe(endpoint)
        try:
            async with self._session.get(
                url, headers=headers, timeout=aiohttp.ClientTimeout(total=_CHECK_TIMEOUT_S)
            ) as response:
                await response.read()
                healthy = response.status < 500 and response.status not in (401, 403)
        except (aiohttp.ClientError, TimeoutError, OSError):
            healthy = False
        if not healthy or probe or self._snapshot.state(key) is not CircuitState.CLOSED:
            state = await self._circuits.record(key, ok=healthy, probe=probe)
            log.info("health check of %s: %s (circuit %s)", provider, healthy, state.value)
        return healthy
