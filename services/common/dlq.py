"""The dead-letter topic: messages a consumer could not handle, kept for a person to look at."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer, ConsumerRecord

from contracts.topics import DLQ


async def dead_letter(
    producer: AIOKafkaProducer,
    record: ConsumerRecord[bytes, bytes],
    error: BaseException,
    *,
    by: str,
) -> None:
    headers = [
        ("sy-source-topic", record.topic.encode()),
        ("sy-source-partition", str(record.partition).encode()),
        ("sy-source-offset", str(record.offset).encode()),
        ("sy-consumer", by.encode()),
        ("sy-error", f"{type(error).__name__}: {error}"[:1000].encode()),
    ]
    await producer.send_and_wait(DLQ.name, record.value, key=record.key, headers=headers)
