"""Kafka plumbing every service shares: topic creation and client factories.

Client settings live here, once, so that every service talks to Kafka the same way; the
comments say why each non-default is what it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from contracts.topics import MAX_MESSAGE_BYTES, TopicSpec

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap: str, specs: Iterable[TopicSpec], *, wait_s: float = 60.0
) -> None:
    """Create the topics that do not exist yet. Safe to call from every service at start-up,
    concurrently: a topic someone else created first is not an error. Waits for the broker up
    to ``wait_s``, since services may start before Kafka is fully up."""
    specs = list(specs)
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="sy-topics")
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [spec for spec in specs if spec.name not in existing]
            if missing:
                await _create(admin, missing)
            return
        except (KafkaConnectionError, OSError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.info("waiting for kafka at %s: %s", bootstrap, exc)
            await asyncio.sleep(0.5)
        finally:
            await admin.close()


async def _create(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> None:
    new = [
        NewTopic(
            name=spec.name,
            num_partitions=spec.partitions,
            replication_factor=1,
            topic_configs=spec.config(),
        )
        for spec in specs
    ]
    try:
        await admin.create_topics(new)
    except TopicAlreadyExistsError:
        pass  # another service won the race
    except KafkaError as exc:
        # create_topics reports per-topic errors; "already exists" for some is fine.
        if "TopicAlreadyExists" not in repr(exc):
            raise
    log.info("created topics: %s", ", ".join(spec.name for spec in specs))


def make_producer(bootstrap: str, *, client_id: str, linger_ms: int = 0) -> AIOKafkaProducer:
    """``linger_ms`` > 0 trades that much latency for fewer, larger produce requests: right for
    messages nobody waits on (usage events), wrong for the request path."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        # Idempotence makes the producer's own retries safe (no duplicates from a retried send);
        # with a single broker acks=all costs nothing over acks=1.
        enable_idempotence=True,
        acks="all",
        # By default send at once: the gateway's added latency is the product. Batching still
        # happens naturally while a request to the broker is in flight.
        linger_ms=linger_ms,
        request_timeout_ms=15_000,
        # Large request bodies (long-context prompts) are ordinary here; see MAX_MESSAGE_BYTES.
        max_request_size=MAX_MESSAGE_BYTES,
    )


def make_consumer(
    bootstrap: str,
    *topics: str,
    group_id: str,
    client_id: str,
    max_poll_records: int = 500,
    fetch_min_bytes: int = 1,
    fetch_max_wait_ms: int = 500,
) -> AIOKafkaConsumer:
    """The fetch settings default to "answer as soon as one message is there"; a consumer that
    nobody waits on (metering) asks for fuller fetches, and costs the broker less."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=client_id,
        # Offsets are committed by our own code, and only for finished messages
        # (services.common.consumer); auto-commit would commit messages still in flight.
        enable_auto_commit=False,
        # A new consumer group starts at the beginning: a request published before the first
        # worker of a provider started must still be served.
        auto_offset_reset="earliest",
        max_poll_records=max_poll_records,
        fetch_min_bytes=fetch_min_bytes,
        fetch_max_wait_ms=fetch_max_wait_ms,
        # A dead worker's partitions move to a live one within a few seconds.
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        # A vendor call may legitimately take minutes (long generations); polling stalls while
        # the in-flight limit is reached, so allow long gaps between polls.
        max_poll_interval_ms=900_000,
    )
