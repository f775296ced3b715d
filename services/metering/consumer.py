"""``BatchConsumer``: reads a topic of metering's in batches and hands each batch to a writer;
``UsageConsumer`` is the one for ``sy.usage.v1`` (``audit_consumer`` holds the audit one).

aiokafka directly rather than a FastStream subscriber: each message is parsed on its own (a
poison message goes to the DLQ instead of failing its batch) and offsets are committed by hand,
only after the batch is in ClickHouse; ``getmany`` plus ``commit(offsets)`` says that plainly.

Commit semantics: auto-commit is off. A batch's offsets are committed after the writer stored
it and its poison messages reached the DLQ. If the writer raises (ClickHouse down), nothing is
committed: the consumer seeks back to the batch's first offsets, waits (backing off), and reads
the same messages again. A crash at any point replays from the last commit, and the writer's
dedupe (by event id) makes the replay write nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from prometheus_client import Counter
from pydantic import ValidationError

from contracts.topics import USAGE
from contracts.usage import UsageEvent
from services.common.dlq import dead_letter
from services.common.kafka import make_consumer, make_producer
from services.metering.metrics import MeteringMetrics
from services.metering.recorder import UsageRecorder

log = logging.getLogger(__name__)

_RETRY_FIRST_S = 0.5
_RETRY_MAX_S = 30.0

Batch = Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]
_E = TypeVar("_E")


@dataclass(frozen=True, slots=True)
class ConsumerCounters:
    consumed: Counter  # messages read: duplicates, poison and re-reads included
    poison: Counter  # messages sent to the DLQ
    failures: Counter  # batches whose write failed and were read again


class BatchConsumer(Generic[_E]):
    """``parse`` turns a message's value into an event or raises ``ValidationError`` (the
    message goes to the DLQ); ``write`` stores a batch's events, once each, or raises."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        group_id: str,
        parse: Callable[[bytes], _E],
        write: Callable[[list[_E]], Awaitable[object]],
        counters: ConsumerCounters,
        what: str,
        batch_max_events: int = 500,
        batch_max_wait_ms: int = 200,
    ) -> None:
        self._bootstrap = bootstrap
        self._parse = parse
        self._write = write
        self._counters = counters
        self._what = what  # for logs and the task's name: "usage", "audit"
        self._group_id = group_id
        self._topic = topic
        self._batch_max_events = batch_max_events
        self._batch_max_wait_s = batch_max_wait_ms / 1000
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Join the group and start consuming in a background task."""
        self._producer = make_producer(self._bootstrap, client_id=self._group_id)
        # Auto-commit off and a new group starting at the oldest retained event (usage is
        # money, an audit trail has no gaps: none is skipped): both set by make_consumer.
        self._consumer = make_consumer(
            self._bootstrap,
            self._topic,
            group_id=self._group_id,
            client_id=self._group_id,
            max_poll_records=self._batch_max_events,
            # Nobody waits on these: fuller fetches mean fewer requests for the broker.
            fetch_min_bytes=64 * 1024,
            fetch_max_wait_ms=100,
        )
        await self._producer.start()
        try:
            await self._consumer.start()
        except BaseException:
            await self._producer.stop()
            raise
        self._task = asyncio.create_task(self._run(), name=f"metering-{self._what}-consumer")

    async def wait(self) -> None:
        """Return when the consume loop has ended: stopped, or died of an error."""
        if self._task is not None:
            await asyncio.wait([self._task])

    async def stop(self) -> None:
        """Finish the batch in hand, commit it, and leave the group."""
        self._stopping.set()
        try:
            if self._task is not None:
                await self._task
        finally:
            if self._consumer is not None:
                await self._consumer.stop()
            if self._producer is not None:
                await self._producer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        failures = 0
        while not self._stopping.is_set():
            batch = await self._next_batch(self._consumer)
            if not batch:
                continue
            try:
                await self._process(batch)
            except Exception:
                # ClickHouse or the DLQ failed (or a bug did): nothing of this batch is committed.
                # Read it again after a pause; the writer's dedupe skips whatever did get
                # written. Retrying forever rather than dying: a usage event is money, an audit
                # event evidence, and a stuck partition shows in the logs, the failure metric
                # and consumer lag.
                failures += 1
                self._counters.failures.inc()
                delay = min(_RETRY_FIRST_S * 2 ** (failures - 1), _RETRY_MAX_S)
                log.exception("%s batch failed; retrying in %.1fs", self._what, delay)
                assigned = self._consumer.assignment()
                for tp, records in batch.items():
                    if tp in assigned:  # a revoked partition is replayed by its new owner
                        self._consumer.seek(tp, records[0].offset)
                await self._pause(delay)
                continue
            failures = 0
            await self._commit(self._consumer, batch)

    async def _next_batch(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[Any]]:
        """Up to ``batch_max_events`` records, waiting at most ``batch_max_wait_ms`` after the
        first one arrives: few large inserts under load, little delay when traffic is light."""
        batch: dict[TopicPartition, list[Any]] = {}
        count = 0
        deadline: float | None = None
        while count < self._batch_max_events and not self._stopping.is_set():
            wait_s = self._batch_max_wait_s if deadline is None else deadline - time.monotonic()
            if wait_s <= 0:
                break
            fetched = await consumer.getmany(
                timeout_ms=int(wait_s * 1000), max_records=self._batch_max_events - count
            )
            for tp, records in fetched.items():
                batch.setdefault(tp, []).extend(records)
                count += len(records)
            if deadline is None:
                if count == 0:
                    return batch  # idle: let the loop check for a stop request
                deadline = time.monotonic() + self._batch_max_wait_s
        return batch

    async def _process(self, batch: Batch) -> None:
        events: list[_E] = []
        for records in batch.values():
            for record in records:
                self._counters.consumed.inc()
                try:
                    events.append(self._parse(record.value or b""))
                except ValidationError as exc:
                    await self._dead_letter(record, exc)
        await self._write(events)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], error: Exception) -> None:
        """Park a message that is not an event of this topic, unchanged, with where it came
        from: it must not block its partition, and it must not be lost. Awaited before the batch
        commits."""
        assert self._producer is not None
        await dead_letter(self._producer, record, error, by=self._group_id)
        self._counters.poison.inc()
        log.warning(
            "%s message %s[%d]@%d is not valid; sent to the DLQ",
            self._what,
            record.topic,
            record.partition,
            record.offset,
        )

    async def _commit(self, consumer: AIOKafkaConsumer, batch: Batch) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        try:
            await consumer.commit(offsets)
        except CommitFailedError:
            # The group rebalanced while the batch was written: another member will read these
            # messages again and find them stored. Nothing is lost or counted twice.
            log.info("commit after rebalance refused; the batch will be replayed and deduped")

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


class UsageConsumer(BatchConsumer[UsageEvent]):
    def __init__(
        self,
        *,
        bootstrap: str,
        recorder: UsageRecorder,
        metrics: MeteringMetrics,
        group_id: str = "sy-metering",
        topic: str = USAGE.name,
        batch_max_events: int = 500,
        batch_max_wait_ms: int = 200,
    ) -> None:
        super().__init__(
            bootstrap=bootstrap,
            topic=topic,
            group_id=group_id,
            parse=UsageEvent.model_validate_json,
            write=recorder.record,
            counters=ConsumerCounters(
                consumed=metrics.events_consumed,
                poison=metrics.poison,
                failures=metrics.insert_failures,
            ),
            what="usage",
            batch_max_events=batch_max_events,
            batch_max_wait_ms=batch_max_wait_ms,
        )
