"""The usage consumer against a real Kafka broker and a real chDB: redelivered events are
stored once, poison messages go to the dead-letter topic, and costs add up to the cent and
beyond."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from decimal import Decimal

import clickhouse_connect
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from clickhouse_connect.driver.client import Client

from contracts._base import now_ms
from contracts.catalogue import Catalogue, ModelCard, Prices
from contracts.topics import DLQ, TopicSpec
from contracts.usage import UsageEvent
from services.common.kafka import ensure_topics
from services.common.pricing import price
from services.metering.consumer import UsageConsumer
from services.metering.metrics import MeteringMetrics
from services.metering.recorder import UsageRecorder
from services.metering.rows import stored_cost
from services.metering.store import PricedEvent, UsageStore
from tests.integration.common.topic_reading import records_with_key

pytestmark = pytest.mark.integration

CATALOGUE = Catalogue(
    [
        ModelCard(
            canonical_id="openai/gpt-itest",
            provider="openai",
            model="gpt-itest",
            prices=Prices(
                input=Decimal("1.10"), output=Decimal("4.40"), cache_read=Decimal("0.275")
            ),
        )
    ]
)
EVENTS = 60
REDELIVERED = 15


def usage_event(n: int, run: str) -> UsageEvent:
    """Every tenth attempt failed: half of those before any output (no tokens, free), half as a
    stream the vendor cut, carrying the tokens Switchyard counted (estimated, charged)."""
    request_id = f"{run}-req-{n}"
    failed, cut = n % 10 == 0, n % 20 == 10
    return UsageEvent(
        event_id=UsageEvent.make_id(request_id, 1),
        request_id=request_id,
        attempt=1,
        ts_ms=now_ms(),
        tenant="acme",
        key_id=f"key-{n % 3}",
        protocol="openai.chat_completions",
        mode="sync",
        lane="interactive",
        provider="openai",
        model="openai/gpt-itest",
        requested_model="gpt-itest",
        status="error" if failed else "ok",
        usage={}
        if failed and not cut
        else {"input_tokens": 1000 + n, "cache_read_tokens": n, "output_tokens": 7 * n},
        usage_estimated=cut,
    )


@pytest.fixture
async def usage_topic(kafka_bootstrap: str) -> str:
    name = f"sy.usage.v1.test-{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(name=name, partitions=3, retention_ms=3_600_000)
    await ensure_topics(kafka_bootstrap, [spec, DLQ])
    return spec.name


async def consume_until(
    consumer: UsageConsumer,
    metrics: MeteringMetrics,
    *,
    consumed: int,
    metric: str = "sy_metering_events_consumed",
) -> None:
    """Run the consumer until ``metric`` reaches ``consumed``; stopping commits the batch."""
    await consumer.start()
    try:
        async with asyncio.timeout(60):
            # Polling: the consumer signals nothing a test could await, and needs not to.
            while counter(metrics, metric) < consumed:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        await consumer.stop()


async def publish(kafka_bootstrap: str, topic: str, events: Sequence[UsageEvent]) -> None:
    """As workers publish usage: keyed by request id, acknowledged by every replica."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send(topic, event.to_bytes(), key=event.request_id.encode())
        await producer.flush()
    finally:
        await producer.stop()


def counter(metrics: MeteringMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(f"{name}_total") or 0.0


def metering(
    kafka_bootstrap: str, store: UsageStore, topic: str, group: str
) -> tuple[UsageConsumer, MeteringMetrics]:
    metrics = MeteringMetrics()
    consumer = UsageConsumer(
        bootstrap=kafka_bootstrap,
        recorder=UsageRecorder(store, CATALOGUE, metrics),
        metrics=metrics,
        group_id=group,
        topic=topic,
        batch_max_events=20,  # several batches, so duplicates span batches as well
    )
    return consumer, metrics


async def test_each_event_is_stored_once_and_poison_goes_to_the_dlq(
    kafka_bootstrap: str, store: UsageStore, clickhouse: Client, usage_topic: str
) -> None:
    run = uuid.uuid4().hex[:8]
    events = [usage_event(n, run) for n in range(EVENTS)]
    poison_key = f"{run}-poison".encode()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send(usage_topic, event.to_bytes(), key=event.request_id.encode())
        await producer.send_and_wait(usage_topic, b'{"not": "a usage event"', key=poison_key)
        for event in events[:REDELIVERED]:  # a worker that crashed before its ack, say
            await producer.send(usage_topic, event.to_bytes(), key=event.request_id.encode())
        await producer.flush()
    finally:
        await producer.stop()

    group = f"sy-metering-test-{run}"
    consumer, metrics = metering(kafka_bootstrap, store, usage_topic, group)
    await consume_until(consumer, metrics, consumed=EVENTS + REDELIVERED + 1)

    rows = clickhouse.query(
        "SELECT count(), sum(cost_usd) FROM usage_events WHERE request_id LIKE {run:String}",
        parameters={"run": f"{run}-%"},
    ).result_rows[0]
    expected_cost = sum(
        (stored_cost(price(e, CATALOGUE.get(e.model)).cost_usd) for e in events), Decimal(0)
    )
    # Counted without FINAL: the duplicates were never written, not merely merged away.
    assert rows == (EVENTS, expected_cost)
    # 54 ok calls and 3 cut streams (n = 10, 30, 50; the other 3 failures are free), each 1000
    # uncached input tokens at 1.10, n cached at 0.275 and 7n output at 4.40:
    # (57 * 1100 + 31.075 * (1770 - 0 - 20 - 40)) / 1e6
    assert expected_cost == Decimal("0.11583825")
    charged_failures = clickhouse.query(
        "SELECT usage_estimated, count(), sum(cost_usd) FROM usage_events"
        " WHERE request_id LIKE {run:String} AND status = 'error'"
        " GROUP BY usage_estimated ORDER BY usage_estimated",
        parameters={"run": f"{run}-%"},
    ).result_rows
    # (3 * 1100 + 31.075 * (10 + 30 + 50)) / 1e6 for the cut streams
    assert charged_failures == [(False, 3, Decimal(0)), (True, 3, Decimal("0.00609675"))]
    assert counter(metrics, "sy_metering_events_inserted") == EVENTS
    assert counter(metrics, "sy_metering_poison_messages") == 1

    dlq = await records_with_key(kafka_bootstrap, DLQ.name, poison_key)
    assert [(m.value, dict(m.headers)["sy-source-topic"]) for m in dlq] == [
        (b'{"not": "a usage event"', usage_topic.encode())
    ]

    # Every offset was committed: the group's next reader finds nothing left.
    check = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group)
    await check.start()
    try:
        partitions = [TopicPartition(usage_topic, p) for p in range(3)]
        committed = [await check.committed(tp) or 0 for tp in partitions]
        ends = await check.end_offsets(partitions)
        assert committed == [ends[tp] for tp in partitions]
    finally:
        await check.stop()

    # A new group replays the whole topic, as after lost offsets: still one row per event.
    replay, replay_metrics = metering(kafka_bootstrap, store, usage_topic, f"{group}-replay")
    await consume_until(replay, replay_metrics, consumed=EVENTS + REDELIVERED + 1)

    assert counter(replay_metrics, "sy_metering_events_inserted") == 0
    recount = clickhouse.query(
        "SELECT count() FROM usage_events WHERE request_id LIKE {run:String}",
        parameters={"run": f"{run}-%"},
    ).result_rows[0][0]
    assert recount == EVENTS


class _FailingOnce(UsageStore):
    """The real store, except that its first insert fails, as when ClickHouse restarts."""

    failed = False

    async def insert_events(self, events: Sequence[PricedEvent]) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("clickhouse went away")
        await super().insert_events(events)


async def test_a_failed_insert_is_retried_not_skipped(
    kafka_bootstrap: str, chdb_dsn: str, clickhouse: Client, usage_topic: str
) -> None:
    run = uuid.uuid4().hex[:8]
    events = [usage_event(n, run) for n in range(EVENTS)]
    await publish(kafka_bootstrap, usage_topic, events)
    flaky = _FailingOnce(clickhouse_connect.get_client(dsn=chdb_dsn))

    consumer, metrics = metering(kafka_bootstrap, flaky, usage_topic, f"sy-metering-test-{run}")
    try:
        await consume_until(
            consumer, metrics, consumed=EVENTS, metric="sy_metering_events_inserted"
        )
    finally:
        flaky.close()

    assert flaky.failed
    assert counter(metrics, "sy_metering_insert_failures") == 1
    # The failed batch was read twice: offsets were not committed past it.
    assert counter(metrics, "sy_metering_events_consumed") > EVENTS
    stored = clickhouse.query(
        "SELECT count() FROM usage_events WHERE request_id LIKE {run:String}",
        parameters={"run": f"{run}-%"},
    ).result_rows[0][0]
    assert stored == EVENTS


class _Unhurried(UsageStore):
    """The real store, taking its time over each insert (as a loaded ClickHouse does): a
    replica that joins mid-stream finds the first still writing, whatever this machine's speed."""

    async def insert_events(self, events: Sequence[PricedEvent]) -> None:
        await asyncio.sleep(0.1)
        await super().insert_events(events)


async def test_a_replica_joining_mid_stream_counts_nothing_twice(
    kafka_bootstrap: str, chdb_dsn: str, clickhouse: Client, usage_topic: str
) -> None:
    """A second metering replica joins the group while the first is writing: partitions move
    between them mid-batch. The write in flight is committed before a partition leaves, and
    what was read but not written is left to the new owner, so no event is inserted twice:
    not in the table before merges, not in the rollups (which see every insert)."""
    run = uuid.uuid4().hex[:8]
    events = [usage_event(n, run) for n in range(1500)]
    await publish(kafka_bootstrap, usage_topic, events)
    rollup = "SELECT sum(requests) FROM usage_hour WHERE tenant = 'acme'"
    rolled_up_before = clickhouse.query(rollup).result_rows[0][0]
    store = _Unhurried(clickhouse_connect.get_client(dsn=chdb_dsn))
    group = f"sy-metering-test-{run}"
    first, first_metrics = metering(kafka_bootstrap, store, usage_topic, group)
    second, second_metrics = metering(kafka_bootstrap, store, usage_topic, group)

    def inserted() -> float:
        return counter(first_metrics, "sy_metering_events_inserted") + counter(
            second_metrics, "sy_metering_events_inserted"
        )

    try:
        await first.start()
        async with asyncio.timeout(120):
            while inserted() < 200:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            await second.start()  # the group rebalances while the first writes
            while inserted() < len(events):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        await first.stop()
        await second.stop()
        store.close()

    assert counter(second_metrics, "sy_metering_events_inserted") > 0  # it did take a share
    raw = clickhouse.query(
        "SELECT count(), uniqExact(event_id) FROM usage_events WHERE request_id LIKE {run:String}",
        parameters={"run": f"{run}-%"},
    ).result_rows[0]
    assert tuple(raw) == (len(events), len(events))
    assert clickhouse.query(rollup).result_rows[0][0] - rolled_up_before == len(events)
