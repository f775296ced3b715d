"""``BatchConsumer``: reads a topic of metering's in batches and hands each batch to a writer;
``UsageConsumer`` is the one for ``sy.usage.v1`` (``audit_consumer`` holds the audit one).

aiokafka directly rather than a FastStream subscriber: each message is parsed on its own (a
poison message goes to the DLQ instead of failing its batch) and offsets are committed by hand,
only after the batch is in ClickHouse; ``getmany`` plus ``commit(offsets)`` says that plainly.

Commit semantics: auto-commit is off. A batch's offsets are committed after the writer stored
it and its poison messages reached the DLQ. One batch is written while the next is fetched and
parsed (the write waits on ClickHouse, which releases the GIL; the parse is Python): at most one
write is in flight, and offsets are committed in order. If the writer raises (ClickHouse down),
nothing is committed: the consumer seeks back to the failed batch's first offsets (and the
parsed one's behind it), waits (backing off), and reads the same messages again. A crash at any
point replays from the last commit, and the writer's dedupe (by event id) makes the replay write
nothing twice. When the group takes partitions away, the write in flight finishes and is
committed first, and what was read of those partitions but not yet written is dropped: their new
owner starts where this one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, IllegalStateError
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
    consumed: Counter  # messages handed to the writer: duplicates, poison and retries included
    poison: Counter  # messages sent to the DLQ
    failures: Counter  # batches whose write failed and were read again


@dataclass(slots=True)
class _Parsed(Generic[_E]):
    events: list[_E]
    poison: list[tuple[ConsumerRecord[bytes, bytes], ValidationError]]


@dataclass(frozen=True, slots=True)
class _Written(Generic[_E]):
    batch: Batch
    task: asyncio.Task[None]


class _FinishWriteOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: BatchConsumer[Any]) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:  # at the first join there is nothing to give up, nor anything read
            self._owner._rebalancing()
        await self._owner._settle_write()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._owner._rebalanced()


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
        self._writing: _Written[_E] | None = None
        # Rebalances seen so far, and whether one is under way: a batch read across a rebalance
        # is not written (see _run).
        self._generation = 0
        self._stable = True
        self._settling = asyncio.Lock()

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
        self._consumer.subscribe([self._topic], listener=_FinishWriteOnRevoke(self))
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
        consumer = self._consumer
        failures = 0
        try:
            while True:
                stopping = self._stopping.is_set()
                generation = self._generation
                batch: Batch = {} if stopping else await self._next_batch(consumer)
                parsed = self._parse_batch(batch)
                wrote = self._writing is not None
                if not await self._settle_write():
                    # ClickHouse or the DLQ failed (or a bug did): nothing of that batch, or of
                    # the one read behind it, is committed. Read both again after a pause; the
                    # writer's dedupe skips whatever did get written. Retrying forever rather
                    # than dying: a usage event is money, an audit event evidence, and a stuck
                    # partition shows in the logs, the failure metric and consumer lag.
                    failures += 1
                    self._counters.failures.inc()
                    delay = min(_RETRY_FIRST_S * 2 ** (failures - 1), _RETRY_MAX_S)
                    log.error("%s batch not stored; retrying in %.1fs", self._what, delay)
                    assert self._writing is not None
                    self._rewind(consumer, self._writing.batch, batch)
                    self._writing = None
                    await self._pause(delay)
                    continue
                if wrote:
                    failures = 0  # a write went through: the next failure starts the backoff anew
                if batch and (generation != self._generation or not self._stable):
                    # Read before (or while) partitions moved: some may belong to another member
                    # by now, which reads them from the last commit and must not race this one
                    # to store them. Read again from where the batch began; the assignment
                    # itself also starts each partition at its commit. (Partitions change only
                    # through a revoke, so a batch that passes holds only assigned ones.)
                    self._rewind(consumer, batch)
                    continue
                if parsed.events or parsed.poison:
                    # Counted when handed over, not when read: a batch dropped above is read
                    # again, and would otherwise be counted twice.
                    self._counters.consumed.inc(sum(len(records) for records in batch.values()))
                    task = asyncio.create_task(self._store(parsed))
                    self._writing = _Written(batch, task)
                elif stopping:
                    return
        finally:
            if self._writing is not None:  # cancelled: the write is abandoned, not committed
                self._writing.task.cancel()
                self._writing = None

    async def _settle_write(self) -> bool:
        """Wait for the write in flight, if any, and commit its batch. False when it failed:
        nothing is committed and ``_writing`` stays, for the loop to rewind. Also called when
        the group takes partitions away, so that what was written is committed first and the
        new owner does not write it again. One caller at a time: the listener must not return
        while the loop's commit of the same write is still on its way."""
        async with self._settling:
            writing = self._writing
            if writing is None:
                return True
            # wait(), not await: a write cancelled with the loop must read as a failure here,
            # not cancel the caller (in the listener, aiokafka's group coordination).
            await asyncio.wait({writing.task})
            if writing.task.cancelled() or writing.task.exception() is not None:
                if not writing.task.cancelled():
                    log.warning(
                        "%s batch write failed", self._what, exc_info=writing.task.exception()
                    )
                return False
            self._writing = None
            await self._commit(self._consumer_or_fail(), writing.batch)
            return True

    def _consumer_or_fail(self) -> AIOKafkaConsumer:
        assert self._consumer is not None
        return self._consumer

    def _rebalancing(self) -> None:
        self._generation += 1
        self._stable = False

    def _rebalanced(self) -> None:
        self._stable = True

    def _parse_batch(self, batch: Batch) -> _Parsed[_E]:
        parsed: _Parsed[_E] = _Parsed([], [])
        for records in batch.values():
            for record in records:
                try:
                    parsed.events.append(self._parse(record.value or b""))
                except ValidationError as exc:
                    parsed.poison.append((record, exc))
        return parsed

    async def _store(self, parsed: _Parsed[_E]) -> None:
        # Poison is parked only once the batch before has been stored: a failure there replays
        # this batch too, and its poison must not reach the DLQ twice for that.
        for record, error in parsed.poison:
            await self._dead_letter(record, error)
        await self._write(parsed.events)

    def _rewind(self, consumer: AIOKafkaConsumer, *batches: Batch) -> None:
        """Seek each partition back to the first offset these uncommitted batches hold."""
        assigned = consumer.assignment()
        first: dict[TopicPartition, int] = {}
        for batch in batches:
            for tp, records in batch.items():
                first[tp] = min(first.get(tp, records[0].offset), records[0].offset)
        for tp, offset in first.items():
            if tp in assigned:  # a revoked partition is replayed by its new owner
                consumer.seek(tp, offset)

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
        assigned = consumer.assignment()
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if tp in assigned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError):
            # The group rebalanced while the batch was written: another member reads these
            # messages again and finds them stored (the write finished before the partitions
            # left: the revoke waits for it). Nothing is lost or counted twice.
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
