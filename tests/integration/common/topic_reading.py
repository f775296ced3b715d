"""Reading what a service under test wrote to a shared topic, without joining any group.

Topics such as ``sy.usage.v1`` and ``sy.dispatch.openai.v1`` are shared by every test of the
session (and by the full stack's own services), so a test picks out its messages by key. The
reader assigns every partition and reads from the beginning up to the end offsets as they are
when it is called: whatever the code under test awaited before that is included, and nothing the
test did not wait for can make the result flaky.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from tests.integration.common.polling import eventually

_READ_TIMEOUT_S = 30.0


async def records_with_key(
    bootstrap: str, topic: str, key: bytes
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` keyed ``key`` written so far, in partition order (one key
    always lands on one partition, so that is the order they were written in)."""
    return await records_with_keys(bootstrap, topic, {key})


async def records_with_keys(
    bootstrap: str, topic: str, keys: set[bytes]
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` with one of ``keys``, in partition order."""
    # Subscribed without a group, the consumer is assigned every partition of the topic.
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="test-topic-reader",
    )
    await consumer.start()
    try:
        await eventually(lambda: bool(consumer.assignment()), f"{topic} is assigned")
        assigned = sorted(consumer.assignment())
        ends: dict[TopicPartition, int] = await consumer.end_offsets(assigned)
        found: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(_READ_TIMEOUT_S):
            while await _behind(consumer, ends):
                batches = await consumer.getmany(timeout_ms=200, max_records=1000)
                for tp, records in batches.items():
                    found.extend(r for r in records if r.key in keys and r.offset < ends[tp])
        return found
    finally:
        await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        position: int = await consumer.position(tp)
        if position < end:
            return True
    return False
