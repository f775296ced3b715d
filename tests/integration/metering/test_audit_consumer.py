"""The audit trail end to end against a real Kafka broker and a real chDB: events published by
``AuditTrail`` (awaited, fire-and-forget, and the key-use summary) reach ``audit_log`` once each,
redelivered or replayed; poison messages go to the dead-letter topic; offsets are committed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry

from contracts.audit import AuditActor, AuditEvent, AuditEventType, DenialReason
from contracts.topics import DLQ, TopicSpec
from services.common.audit import AuditTrail, AuditUnavailable, KeyUseSummary
from services.common.kafka import ensure_topics, make_producer
from services.metering.audit_consumer import AuditConsumer, AuditMetrics, AuditRecorder
from services.metering.audit_store import AuditQuery, AuditStore
from services.metering.store import UsageStore
from tests.integration.common.topic_reading import records_with_key

pytestmark = pytest.mark.integration

ADMIN_ACTIONS = 30
DENIALS = 20
REDELIVERED = 10
PARTITIONS = 3


@pytest.fixture
async def audit_topic(kafka_bootstrap: str) -> str:
    name = f"sy.audit.v1.test-{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(name=name, partitions=PARTITIONS, retention_ms=3_600_000)
    await ensure_topics(kafka_bootstrap, [spec, DLQ])
    return spec.name


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    client = make_producer(kafka_bootstrap, client_id="test-audit")
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


def admin_action(run: str, n: int) -> AuditEvent:
    return AuditEvent(
        type=AuditEventType.PROJECT_CREATED if n % 2 else AuditEventType.PROJECT_UPDATED,
        project_id=f"{run}-proj-{n % 3}",
        project_name=f"Project {n % 3}",
        actor=AuditActor(type="api_key", api_key_id="key_admin", api_key_type="admin"),
        target_id=f"{run}-proj-{n % 3}",
        details={"name": f"Project {n % 3}"},
    )


def denial(run: str, n: int) -> AuditEvent:
    return AuditEvent(
        type=AuditEventType.REQUEST_DENIED,
        # a bad key has no project: organisation-level, keyed "org"
        project_id=None if n % 4 == 0 else f"{run}-proj-{n % 3}",
        actor=AuditActor(type="api_key", api_key_id=f"{run}-key-{n % 2}", ip_address="10.1.2.3"),
        target_id=f"{run}-denied-{n}",
        outcome="denied",
        error_code="rate_limited",
        details={"reason": DenialReason.RATE_LIMITED},
    )


def counter(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(f"sy_metering_audit_{name}_total") or 0.0


def auditing(
    kafka_bootstrap: str, store: AuditStore, topic: str, group: str
) -> tuple[AuditConsumer, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = AuditMetrics(registry)
    consumer = AuditConsumer(
        bootstrap=kafka_bootstrap,
        recorder=AuditRecorder(store, metrics),
        metrics=metrics,
        group_id=group,
        topic=topic,
        batch_max_events=20,  # several batches, so duplicates span batches as well
    )
    return consumer, registry


async def consume_until(
    consumer: AuditConsumer, registry: CollectorRegistry, *, consumed: int, metric: str
) -> None:
    """Run the consumer until ``metric`` reaches ``consumed``; stopping commits the batch."""
    await consumer.start()
    try:
        async with asyncio.timeout(60):
            # Polling: the consumer signals nothing a test could await, and needs not to.
            while counter(registry, metric) < consumed:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        await consumer.stop()


def stored_rows(clickhouse: Client, run: str) -> int:
    # Without FINAL: the duplicates were never written, not merely merged away.
    return int(
        clickhouse.query(
            "SELECT count() FROM audit_log WHERE startsWith(target_id, {run:String})"
            " OR startsWith(project_id, {run:String})",
            parameters={"run": run},
        ).result_rows[0][0]
    )


async def test_each_event_is_stored_once_and_poison_goes_to_the_dlq(
    kafka_bootstrap: str,
    producer: AIOKafkaProducer,
    store: UsageStore,
    clickhouse: Client,
    audit_topic: str,
) -> None:
    run = uuid.uuid4().hex[:8]
    trail = AuditTrail(producer, topic=audit_topic)
    actions = [admin_action(run, n) for n in range(ADMIN_ACTIONS)]
    denials = [denial(run, n) for n in range(DENIALS)]
    for event in actions:
        await trail.record(event)  # as an admin route does, before answering
    for event in denials:
        trail.note(event)  # as the request path does
    await trail.drain()
    summary = KeyUseSummary(trail)
    for n in range(7):
        summary.count(f"{run}-key-{n % 2}", f"{run}-proj-0")
    assert await summary.flush() == 2

    poison_key = f"{run}-poison".encode()
    too_many_details = json.loads(actions[0].to_bytes())
    too_many_details["id"] = "audit_" + "f" * 24
    too_many_details["details"] = {f"k{i}": i for i in range(40)}
    poison = [b'{"not": "an audit event"', json.dumps(too_many_details).encode()]
    for value in poison:
        await producer.send_and_wait(audit_topic, value, key=poison_key)
    for event in actions[:REDELIVERED]:  # an ingress that retried a send it thought lost
        await trail.record(event)
    unique = ADMIN_ACTIONS + DENIALS + 2
    messages = unique + len(poison) + REDELIVERED

    audit = AuditStore(store)
    group = f"sy-metering-audit-test-{run}"
    consumer, registry = auditing(kafka_bootstrap, audit, audit_topic, group)
    await consume_until(consumer, registry, consumed=messages, metric="events_consumed")

    assert stored_rows(clickhouse, run) == unique
    assert counter(registry, "events_inserted") == unique
    assert counter(registry, "duplicates_skipped") == REDELIVERED
    assert counter(registry, "poison_messages") == len(poison)
    dlq = await records_with_key(kafka_bootstrap, DLQ.name, poison_key)
    assert sorted(m.value for m in dlq) == sorted(poison)
    assert {dict(m.headers)["sy-source-topic"] for m in dlq} == {audit_topic.encode()}

    # What went in comes out, through the listing the API serves.
    page = await audit.list_events(
        AuditQuery(
            project_ids=frozenset({f"{run}-proj-0"}), event_types=frozenset({"api_key.used"})
        ),
        visible_projects=None,
    )
    assert sorted((e.target_id, e.details["count"]) for e in page.events) == [
        (f"{run}-key-0", 4),
        (f"{run}-key-1", 3),
    ]
    [first] = [
        e
        for e in (
            await audit.list_events(
                AuditQuery(resource_ids=frozenset({f"{run}-denied-0"})), visible_projects=None
            )
        ).events
    ]
    assert first == denials[0]

    # Every offset was committed: the group's next reader finds nothing left.
    check = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group)
    await check.start()
    try:
        partitions = [TopicPartition(audit_topic, p) for p in range(PARTITIONS)]
        committed = [await check.committed(tp) or 0 for tp in partitions]
        ends = await check.end_offsets(partitions)
        assert committed == [ends[tp] for tp in partitions]
    finally:
        await check.stop()

    # A new group replays the whole topic, as after lost offsets: still one row per event.
    replay, replay_registry = auditing(kafka_bootstrap, audit, audit_topic, f"{group}-replay")
    await consume_until(replay, replay_registry, consumed=messages, metric="events_consumed")

    assert counter(replay_registry, "events_inserted") == 0
    assert stored_rows(clickhouse, run) == unique


async def test_one_projects_events_keep_their_order_on_one_partition(
    kafka_bootstrap: str, producer: AIOKafkaProducer, audit_topic: str
) -> None:
    run = uuid.uuid4().hex[:8]
    trail = AuditTrail(producer, topic=audit_topic)
    events = [admin_action(run, 0) for _ in range(10)]  # all of project 0
    for event in events:
        await trail.record(event)

    reader = AIOKafkaConsumer(
        audit_topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await reader.start()
    try:
        found: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(30):
            while len(found) < len(events):
                batch = await reader.getmany(timeout_ms=500)
                found += [m for records in batch.values() for m in records]
    finally:
        await reader.stop()

    assert {m.partition for m in found} == {found[0].partition}
    assert {m.key for m in found} == {f"{run}-proj-0".encode()}
    assert [AuditEvent.model_validate_json(m.value or b"").id for m in found] == [
        e.id for e in events
    ]


async def test_record_raises_and_note_logs_when_kafka_cannot_take_the_event(
    kafka_bootstrap: str, audit_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    closed = make_producer(kafka_bootstrap, client_id="test-audit-closed")
    await closed.start()
    await closed.stop()  # a producer that has gone away, as in a shutdown race
    trail = AuditTrail(closed, topic=audit_topic, record_timeout_s=2.0)
    event = denial(uuid.uuid4().hex[:8], 1)

    with pytest.raises(AuditUnavailable):
        await trail.record(event)
    trail.note(event)  # never raises
    await trail.drain()

    assert f"audit event {event.id} (request.denied) not recorded" in caplog.text


class _FailingOnce(AuditStore):
    """The real store, except that its first insert fails, as when ClickHouse restarts."""

    failed = False

    async def insert(self, events: Sequence[AuditEvent]) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("clickhouse went away")
        await super().insert(events)


async def test_a_failed_insert_is_retried_not_skipped(
    kafka_bootstrap: str,
    producer: AIOKafkaProducer,
    store: UsageStore,
    clickhouse: Client,
    audit_topic: str,
) -> None:
    run = uuid.uuid4().hex[:8]
    trail = AuditTrail(producer, topic=audit_topic)
    for n in range(ADMIN_ACTIONS):
        await trail.record(admin_action(run, n))
    flaky = _FailingOnce(store)

    consumer, registry = auditing(kafka_bootstrap, flaky, audit_topic, f"sy-audit-test-{run}")
    await consume_until(consumer, registry, consumed=ADMIN_ACTIONS, metric="events_inserted")

    assert flaky.failed
    assert counter(registry, "insert_failures") == 1
    # The failed batch was read twice: offsets were not committed past it.
    assert counter(registry, "events_consumed") > ADMIN_ACTIONS
    assert stored_rows(clickhouse, run) == ADMIN_ACTIONS
