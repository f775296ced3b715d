"""Whether Kafka answers now, not whether it answered at start-up.

A producer that has lost its broker says nothing until a send times out, and a consumer keeps
polling quietly; so each service asks the broker itself, once a second, which API versions it
speaks: a request the broker must answer, and the cheapest there is (a metadata request, the
obvious choice, costs ~5 ms of the event loop to parse in aiokafka, against ~0.5 ms). Health
endpoints report the answer, and ingress refuses new requests at once while the broker is known
to be down instead of holding them for a publish time-out.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.protocol.admin import ApiVersionRequest

from services.common.periodic import Periodic

log = logging.getLogger(__name__)

_PROBE_EVERY_S = 1.0
_PROBE_TIMEOUT_S = 2.0


class KafkaWatch:
    def __init__(self, client: AIOKafkaClient, *, every_s: float = _PROBE_EVERY_S) -> None:
        self._client = client
        # Probes once in start() (so ``up`` is true at once when the broker is), then on.
        self._loop = Periodic("kafka-watch", every_s, self._probe, at_start=True)
        self.up = False

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _probe(self) -> None:
        try:
            node = self._client.get_random_node()
            if node is None:
                raise KafkaConnectionError("no broker known")
            async with asyncio.timeout(_PROBE_TIMEOUT_S):
                await self._client.send(node, ApiVersionRequest())
        except (KafkaError, OSError, TimeoutError) as exc:
            if self.up:
                log.warning("kafka is unreachable: %s", type(exc).__name__)
            self.up = False
            return
        if not self.up:
            log.info("kafka is reachable")
        self.up = True
