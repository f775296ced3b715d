"""The router service: ``sy.requests.v1`` in, a plan on the provider's dispatch topic out.

Stateless: every replica joins consumer group ``sy-router`` and handles its share of partitions.
A request is acknowledged (its offset becomes committable) only after its plan, or its refusal,
was written, so a crash between the two redelivers it; the dispatch is then written twice and the
worker's done mark absorbs the duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import os

from aiokafka import AIOKafkaProducer, ConsumerRecord
from prometheus_client import Counter

from contracts import topics
from contracts.catalogue import default_catalogue
from contracts.envelope import RequestEnvelope
from contracts.errors import ErrorCode, ErrorInfo
from services.common.circuits import Circuits, CircuitSnapshot
from services.common.consumer import ConcurrentConsumer
from services.common.deadlines import DeadlinePassed
from services.common.delivery import OutcomeDelivery
from services.common.dlq import dead_letter
from services.common.gc_tuning import tune_gc
from services.common.kafka import ensure_topics, make_consumer, make_producer
from services.common.kafka_health import KafkaWatch
from services.common.ops import configure_logging
from services.common.plans import publish_plan
from services.common.provider_registry import LiveProviders
from services.common.redis_client import connect_redis
from services.common.replies import ReplySender
from services.common.routing_config import ConfigError, ConfigWatch
from services.common.runtime import run_consumers, run_until_signalled
from services.router.auto import AutoChooser
from services.router.latency import ObservedLatency
from services.router.planning import CataloguePlanner, Planner, PlanRefused
from services.router.settings import RouterSettings

log = logging.getLogger(__name__)


PLANNED = Counter("sy_router_planned_total", "Requests planned", ["provider", "reason"])
REFUSED = Counter("sy_router_refused_total", "Requests refused", ["code"])

GROUP_ID = "sy-router"


class Router:
    def __init__(
        self, planner: Planner, producer: AIOKafkaProducer, delivery: OutcomeDelivery
    ) -> None:
        self._planner = planner
        self._producer = producer
        self._delivery = delivery

    async def handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        envelope = RequestEnvelope.model_validate_json(record.value)
        try:
            plan = self._planner.plan(envelope)
        except PlanRefused as refused:
            REFUSED.labels(refused.info.code.value).inc()
            await self._delivery.deliver_error(envelope, refused.info)
            return
        try:
            await publish_plan(self._producer, plan)
        except DeadlinePassed as exc:
            log.warning("gave up planning %s: %s", envelope.request_id, exc)
            info = ErrorInfo(
                code=ErrorCode.UNAVAILABLE,
                message="Switchyard could not schedule the request in time.",
                retryable=True,
            )
            await self._delivery.deliver_error(envelope, info)
            return
        PLANNED.labels(plan.primary.provider, plan.reason.value).inc()


async def run(settings: RouterSettings, stop: asyncio.Event) -> None:
    catalogue = default_catalogue()
    # First: a bad routing config stops the router before it touches Kafka, with the reason.
    config = ConfigWatch(settings.routing_config, catalogue)
    await ensure_topics(settings.kafka_bootstrap, topics.all_topics())
    client_id = f"sy-router-{os.getpid()}"
    producer = make_producer(settings.kafka_bootstrap, client_id=client_id)
    consumer = make_consumer(settings.kafka_bootstrap, group_id=GROUP_ID, client_id=client_id)
    redis = connect_redis(settings.redis_url)
    # Open circuits, as every worker records them: a plan leaves those models out.
    circuits = CircuitSnapshot(Circuits(redis, lambda key: config().circuit_policy(key)))
    served = LiveProviders(redis, topics.PROVIDERS)
    latency = ObservedLatency(redis)
    await producer.start()
    kafka = KafkaWatch(producer.client)
    await kafka.start()
    await config.start()
    await circuits.start()
    await served.start()
    await latency.start()
    await consumer.start()
    router = Router(
        CataloguePlanner(
            catalogue, config, circuits, served=served, chooser=AutoChooser(catalogue, latency)
        ),
        producer,
        OutcomeDelivery(ReplySender(redis), producer),
    )

    async def poison(record: ConsumerRecord[bytes, bytes], exc: BaseException) -> None:
        await dead_letter(producer, record, exc, by=GROUP_ID)

    loop = ConcurrentConsumer(
        consumer,
        [topics.REQUESTS.name],
        router.handle,
        on_poison=poison,
        max_in_flight=settings.router_max_in_flight,
    )
    log.info("router up: consuming %s", topics.REQUESTS.name)
    try:
        await run_consumers(
            stop,
            [loop],
            ops_port=settings.router_port,
            ops_host=settings.router_host,
            health=lambda: {"kafka": kafka.up},
        )
    finally:
        await latency.stop()
        await served.stop()
        await circuits.stop()
        await config.stop()
        await kafka.stop()
        await consumer.stop()
        await producer.stop()
        await redis.aclose()


def serve() -> None:
    settings = RouterSettings()
    configure_logging(settings.log_level)
    tune_gc()
    try:
        run_until_signalled(lambda stop: run(settings, stop))
    except ConfigError as exc:
        raise SystemExit(f"router not started, the routing config is refused: {exc}") from None
