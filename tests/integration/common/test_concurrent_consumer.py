"""``ConcurrentConsumer`` against the real broker: many messages in flight, finishing in any order,
committed in order (DESIGN.md, message rules).

Committed offsets are read with an admin client, as an outside observer sees them: what a
replacement consumer would start from if this one died at that moment.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import TopicSpec
from services.common.consumer import ConcurrentConsumer, Handler, PoisonHandler
from services.common.kafka import ensure_topics, make_consumer, make_producer
from tests.integration.common.polling import eventually

pytestmark = pytest.mark.integration

_COMMIT_INTERVAL_S = 0.02


async def new_topic(bootstrap: str, *, partitions: int) -> str:
    name = f"test.consumer.{uuid.uuid4().hex[:12]}"
    await ensure_topics(
        bootstrap, [TopicSpec(name=name, partitions=partitions, retention_ms=3_600_000)]
    )
    return name


async def produce(bootstrap: str, topic: str, count: int, *, partitions: int) -> None:
    """``count`` messages, message ``i`` to partition ``i % partitions``: a fresh topic puts
    message ``i`` at offset ``i // partitions``."""
    producer = make_producer(bootstrap, client_id="test-consumer-producer")
    await producer.start()
    try:
        sent = [
            await producer.send(topic, str(i).encode(), partition=i % partitions)
            for i in range(count)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def committed(admin: AIOKafkaAdminClient, group: str) -> dict[int, int]:
    """The group's committed offset per partition (Kafka's "next offset to read")."""
    offsets = await admin.list_consumer_group_offsets(group)
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def until_committed(
    admin: AIOKafkaAdminClient, group: str, expected: dict[int, int]
) -> dict[int, int]:
    seen: dict[int, int] = {}

    async def reached() -> bool:
        nonlocal seen
        seen = await committed(admin, group)
        return seen == expected

    await eventually(reached, f"committed offsets {expected} (last seen: {seen})")
    return seen


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="test-observer")
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def no_poison_expected(record: ConsumerRecord[bytes, bytes], exc: BaseException) -> None:
    raise AssertionError(f"unexpected poison at {record.partition}@{record.offset}: {exc!r}")


@dataclass(frozen=True)
class Consuming:
    loop: ConcurrentConsumer
    run: asyncio.Task[None]  # ``loop.run()``: ends after ``loop.stop()`` and the final commit


@asynccontextmanager
async def consuming(
    bootstrap: str,
    topic: str,
    group: str,
    handler: Handler,
    *,
    on_poison: PoisonHandler = no_poison_expected,
    max_in_flight: int = 50,
) -> AsyncIterator[Consuming]:
    consumer = make_consumer(bootstrap, group_id=group, client_id=f"test-{group}")
    await consumer.start()
    loop = ConcurrentConsumer(
        consumer,
        [topic],
        handler,
        on_poison=on_poison,
        max_in_flight=max_in_flight,
        commit_interval_s=_COMMIT_INTERVAL_S,
    )
    running = asyncio.create_task(loop.run())
    try:
        yield Consuming(loop, running)
    finally:
        loop.stop()
        try:
            await running
        finally:
            await consumer.stop()


async def test_commit_stops_at_the_oldest_unfinished_message_until_it_finishes(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient
) -> None:
    partitions, messages = 2, 200
    per_partition = messages // partitions
    blocked = (0, 7)  # (partition, offset): an early message whose vendor call hangs
    topic = await new_topic(kafka_bootstrap, partitions=partitions)
    await produce(kafka_bootstrap, topic, messages, partitions=partitions)
    group = f"test-cc-order-{uuid.uuid4().hex[:8]}"
    release = asyncio.Event()
    finished: list[tuple[int, int]] = []

    async def handler(record: ConsumerRecord[bytes, bytes]) -> None:
        where = (record.partition, record.offset)
        if where == blocked:
            await release.wait()
        else:
            # A per-message pseudo-random duration, so later messages overtake earlier ones.
            await asyncio.sleep(random.Random(f"{where}").uniform(0, 0.02))
        finished.append(where)

    async with consuming(kafka_bootstrap, topic, group, handler):
        try:
            await eventually(lambda: len(finished) == messages - 1, "all but the blocked finish")
            assert blocked not in finished
            # Later messages of the blocked partition did finish: only the commit waits for it.
            assert {(0, o) for o in range(blocked[1] + 1, per_partition)} <= set(finished)
            # Completion really was out of order within a partition.
            for partition in range(partitions):
                order = [offset for p, offset in finished if p == partition]
                assert order != sorted(order)

            # Partition 1 commits to its end; partition 0 exactly up to the blocked message.
            await until_committed(admin, group, {0: blocked[1], 1: per_partition})
            # And stays there, however many commit rounds pass while the message is unfinished.
            for _ in range(25):
                await asyncio.sleep(_COMMIT_INTERVAL_S)
                assert await committed(admin, group) == {0: blocked[1], 1: per_partition}

            release.set()
            await until_committed(admin, group, {0: per_partition, 1: per_partition})
        finally:
            release.set()  # a failed assertion must not leave stop() waiting for it
    assert finished[-1] == blocked
    assert sorted(finished) == [(p, o) for p in range(partitions) for o in range(per_partition)]


async def test_a_failing_handler_sends_the_message_to_on_poison_and_commits_past_it(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient
) -> None:
    messages = 30
    topic = await new_topic(kafka_bootstrap, partitions=1)
    await produce(kafka_bootstrap, topic, messages, partitions=1)
    group = f"test-cc-poison-{uuid.uuid4().hex[:8]}"
    handled: list[int] = []
    poisoned: list[tuple[int, bytes | None, BaseException]] = []

    async def handler(record: ConsumerRecord[bytes, bytes]) -> None:
        if record.offset in (3, 17):
            raise ValueError(f"cannot parse message {record.offset}")
        handled.append(record.offset)

    async def on_poison(record: ConsumerRecord[bytes, bytes], exc: BaseException) -> None:
        poisoned.append((record.offset, record.value, exc))
        if record.offset == 17:
            # The dead-letter write itself fails: the message must not block the partition.
            raise ConnectionError("the dead-letter topic is unreachable")

    async with consuming(kafka_bootstrap, topic, group, handler, on_poison=on_poison):
        await until_committed(admin, group, {0: messages})

    assert sorted(handled) == [o for o in range(messages) if o not in (3, 17)]
    assert sorted((offset, value) for offset, value, _ in poisoned) == [(3, b"3"), (17, b"17")]
    for offset, _, exc in poisoned:
        assert isinstance(exc, ValueError)
        assert str(exc) == f"cannot parse message {offset}"


async def test_a_restarted_consumer_gets_back_exactly_what_was_not_committed(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient
) -> None:
    messages = 40
    unfinished = (10, 25)
    topic = await new_topic(kafka_bootstrap, partitions=1)
    await produce(kafka_bootstrap, topic, messages, partitions=1)
    group = f"test-cc-restart-{uuid.uuid4().hex[:8]}"
    first_run: list[int] = []
    hanging: dict[int, asyncio.Future[None]] = {}

    async def first_handler(record: ConsumerRecord[bytes, bytes]) -> None:
        if record.offset in unfinished:
            # A call still running when the process goes down: it is interrupted, not finished.
            hanging[record.offset] = asyncio.get_running_loop().create_future()
            await hanging[record.offset]
        first_run.append(record.offset)

    async with consuming(kafka_bootstrap, topic, group, first_handler) as first:
        try:
            await eventually(
                lambda: len(first_run) == messages - len(unfinished), "the rest finish"
            )
            await until_committed(admin, group, {0: unfinished[0]})
            first.loop.stop()
        finally:
            for call in hanging.values():
                call.cancel()
    assert await committed(admin, group) == {0: unfinished[0]}

    second_run: list[int] = []

    async def second_handler(record: ConsumerRecord[bytes, bytes]) -> None:
        second_run.append(record.offset)

    async with consuming(kafka_bootstrap, topic, group, second_handler):
        await until_committed(admin, group, {0: messages})

    # Delivery resumes at the oldest unfinished message: everything before it was finished and
    # is not seen again; everything after it comes back, the finished ones included (Kafka keeps
    # one offset per partition; redelivered finished work is absorbed by idempotent handlers).
    assert sorted(second_run) == list(range(unfinished[0], messages))
    assert set(unfinished) <= set(second_run)
    assert not set(first_run) & set(unfinished)
    assert set(first_run) | set(second_run) == set(range(messages))


async def test_stop_lets_in_flight_messages_finish_and_commits_them(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient
) -> None:
    messages, slow = 20, 5
    topic = await new_topic(kafka_bootstrap, partitions=1)
    await produce(kafka_bootstrap, topic, messages, partitions=1)
    group = f"test-cc-stop-{uuid.uuid4().hex[:8]}"
    release = asyncio.Event()
    finished: list[int] = []

    async def handler(record: ConsumerRecord[bytes, bytes]) -> None:
        if record.offset == slow:
            await release.wait()
        finished.append(record.offset)

    async with consuming(kafka_bootstrap, topic, group, handler) as running:
        try:
            await eventually(lambda: len(finished) == messages - 1, "all but the slow one finish")
            await until_committed(admin, group, {0: slow})
            running.loop.stop()
            # Stopping waits for the message still in flight instead of abandoning it.
            for _ in range(10):
                await asyncio.sleep(_COMMIT_INTERVAL_S)
                assert not running.run.done()
            assert running.loop.in_flight == 1
        finally:
            release.set()
        await running.run
        # Its final commit covers the message that finished during the stop.
        assert await committed(admin, group) == {0: messages}
    assert finished[-1] == slow
