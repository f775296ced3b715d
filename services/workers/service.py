"""The worker service: ``switchyard worker --provider NAME [--provider NAME ...]``.

Each provider gets its own consumer group (``sy-workers-<provider>``), so every provider's pool
scales on its own: start more processes for the busy provider, and Kafka splits its partitions
among them. Both lanes (interactive, batch) of a provider are consumed by the same group.
"""

from __future__ import annotations

import asyncio
import logging
import os

from aiokafka import ConsumerRecord

from contracts import topics
from contracts.catalogue import default_catalogue
from contracts.plan import DispatchPlan
from contracts.topics import Lane, dispatch_topic
from services.common.capacity import Capacity
from services.common.circuits import Circuits, CircuitSnapshot
from services.common.consumer import ConcurrentConsumer
from services.common.delivery import OutcomeDelivery
from services.common.dlq import dead_letter
from services.common.gc_tuning import tune_gc
from services.common.kafka import ensure_topics, make_consumer, make_producer
from services.common.kafka_health import KafkaWatch
from services.common.ops import configure_logging
from services.common.provider_registry import (
    Heartbeat,
    LiveProviders,
    ServedProvider,
    vendor_host,
)
from services.common.provider_stats import AttemptStats
from services.common.rate_limits import RateLimiter
from services.common.redis_client import connect_redis
from services.common.replies import ReplySender
from services.common.request_state import ClaimKeeper, RequestStore
from services.common.routing_config import ConfigWatch
from services.common.runtime import run_consumers, run_until_signalled
from services.workers.dispatch import Dispatcher, new_instance_id
from services.workers.guard import SharedGuard
from services.workers.health_checks import HealthChecks
from services.workers.http_pool import vendor_session
from services.workers.providers.registry import endpoint_for
from services.workers.retry import RetryPolicy
from services.workers.settings import WorkerSettings

log = logging.getLogger(__name__)


def group_id(provider: str) -> str:
    return f"sy-workers-{provider}"


async def run(settings: WorkerSettings, providers: list[str], stop: asyncio.Event) -> None:
    await ensure_topics(settings.kafka_bootstrap, topics.all_topics())
    instance_id = new_instance_id()
    client_id = f"sy-worker-{os.getpid()}"
    # This producer carries usage events and async outcomes, which nobody waits on: a short
    # linger batches them (the caller's reply goes through Redis first and is not delayed).
    producer = make_producer(settings.kafka_bootstrap, client_id=client_id, linger_ms=5)
    redis = connect_redis(settings.redis_url)
    endpoints = {
        provider: endpoint_for(provider, os.environ, settings.vendorsim_url)
        for provider in providers
    }
    for endpoint in endpoints.values():
        log.info(
            "provider %s -> %s%s",
            endpoint.provider,
            endpoint.base_url,
            " (simulated: no API key set)" if endpoint.simulated else "",
        )
    max_conns = settings.worker_max_in_flight * len(providers)
    session = vendor_session(max_conns)
    config = ConfigWatch(settings.routing_config, default_catalogue())
    circuits = Circuits(redis, lambda key: config().circuit_policy(key))
    snapshot = CircuitSnapshot(circuits)
    stats = AttemptStats(redis)
    health_checks = HealthChecks(
        instance_id=instance_id,
        endpoints=endpoints,
        session=session,
        redis=redis,
        circuits=circuits,
        snapshot=snapshot,
        config=config,
    )
    heartbeat = Heartbeat(
        redis,
        instance_id,
        {
            p: ServedProvider(vendor_host=vendor_host(e.base_url), simulated=e.simulated)
            for p, e in endpoints.items()
        },
    )
    claims = ClaimKeeper(redis, instance_id)
    served = LiveProviders(redis, topics.PROVIDERS)
    guard = SharedGuard(
        circuits=circuits,
        snapshot=snapshot,
        capacity=Capacity(redis, lambda provider: config().account_limits(provider)),
        stats=stats,
    )
    # Started before Kafka: the first plans consumed must already see the shared state.
    side_tasks = (config, snapshot, stats, health_checks, heartbeat, claims, guard, served)
    for task in side_tasks:
        await task.start()
    await producer.start()
    kafka = KafkaWatch(producer.client)
    await kafka.start()
    replies = ReplySender(redis)
    dispatcher = Dispatcher(
        instance_id=instance_id,
        session=session,
        endpoints=endpoints,
        producer=producer,
        replies=replies,
        delivery=OutcomeDelivery(replies, producer),
        requests=RequestStore(redis),
        retry=RetryPolicy(
            max_attempts=settings.worker_max_attempts,
            max_rate_limited_attempts=settings.worker_max_rate_limited_attempts,
            base_s=settings.worker_retry_base_s,
            max_s=settings.worker_retry_max_s,
        ),
        timeouts={provider: settings.timeouts_for(provider) for provider in providers},
        guard=guard,
        claims=claims,
        served=served,
        rate_limits=RateLimiter(redis),
    )

    async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
        plan = DispatchPlan.model_validate_json(record.value)
        try:
            await dispatcher.handle(plan)
        except Exception:
            # A bug, not a vendor failure (those are handled inside): tell the waiting caller
            # now rather than at its deadline, then let the loop dead-letter the message.
            await dispatcher.fail(plan)
            raise

    loops: list[ConcurrentConsumer] = []
    consumers = []
    for provider in providers:
        consumer = make_consumer(
            settings.kafka_bootstrap, group_id=group_id(provider), client_id=client_id
        )
        await consumer.start()
        consumers.append(consumer)

        async def poison(
            record: ConsumerRecord[bytes, bytes], exc: BaseException, provider: str = provider
        ) -> None:
            await dead_letter(producer, record, exc, by=group_id(provider))

        loops.append(
            ConcurrentConsumer(
                consumer,
                [dispatch_topic(provider, lane).name for lane in Lane],
                handle,
                on_poison=poison,
                max_in_flight=settings.worker_max_in_flight,
            )
        )
    log.info("worker %s up for %s", instance_id, ", ".join(providers))
    try:
        await run_consumers(
            stop,
            loops,
            ops_port=settings.worker_port,
            ops_host=settings.worker_host,
            health=lambda: {"kafka": kafka.up},
        )
    finally:
        await kafka.stop()
        for consumer in consumers:
            await consumer.stop()
        await producer.stop()
        for task in reversed(side_tasks):
            await task.stop()
        await session.close()
        await redis.aclose()


def serve(providers: list[str]) -> None:
    settings = WorkerSettings()
    configure_logging(settings.log_level)
    tune_gc()
    unknown = sorted(set(providers) - set(topics.PROVIDERS))
    if unknown:
        raise SystemExit(
            f"unknown provider(s): {', '.join(unknown)}; known: {', '.join(topics.PROVIDERS)}"
        )
    run_until_signalled(lambda stop: run(settings, sorted(set(providers)), stop))
