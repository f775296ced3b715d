"""A Kafka consumer loop that keeps many messages in flight and commits in order.

Why not FastStream's subscriber here: it handles one message at a time per subscriber, or with
concurrency, acknowledges messages as they finish, out of order. The delivery guarantee of the
whole system rests on "commit only up to the oldest unfinished message", so this loop drives
aiokafka (which FastStream itself wraps) directly, with ``InflightWindow`` doing the bookkeeping.

What happens when the handler raises: the message is handed to ``on_poison`` (which sends it to
the dead-letter topic) and then counts as finished, so one bad message cannot block its partition.
A handler is expected to deal with every failure it knows about itself (e.g. reply with an
error); an exception here is a bug or a message that cannot be parsed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition

from services.common.inflight import InflightWindow

log = logging.getLogger(__name__)

Handler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]]
PoisonHandler = Callable[[ConsumerRecord[bytes, bytes], BaseException], Awaitable[None]]


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ConcurrentConsumer) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._loop.commit_finished()
        self._loop.window.forget(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None


class ConcurrentConsumer:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        topics: list[str],
        handler: Handler,
        *,
        on_poison: PoisonHandler,
        max_in_flight: int,
        commit_interval_s: float = 0.05,
    ) -> None:
        self._consumer = consumer
        self._topics = topics
        self._handler = handler
        self._on_poison = on_poison
        self._slots = asyncio.Semaphore(max_in_flight)
        self._commit_interval_s = commit_interval_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self.window: InflightWindow[TopicPartition] = InflightWindow()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self) -> None:
        """Consume until ``stop()``; then wait for in-flight messages and commit them."""
        self._consumer.subscribe(self._topics, listener=_CommitOnRevoke(self))
        committer = asyncio.create_task(self._commit_periodically())
        try:
            while not self._stopping.is_set():
                batches = await self._consumer.getmany(timeout_ms=100, max_records=500)
                for partition, records in batches.items():
                    for record in records:
                        await self._slots.acquire()
                        self.window.start(partition, record.offset)
                        task = asyncio.create_task(self._process(partition, record))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
        finally:
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=30)
            # What did not finish in time is abandoned, uncommitted: it will be redelivered.
            for task in set(self._tasks):
                task.cancel()
            committer.cancel()
            await self.commit_finished()

    def stop(self) -> None:
        self._stopping.set()

    async def _process(
        self, partition: TopicPartition, record: ConsumerRecord[bytes, bytes]
    ) -> None:
        try:
            await self._handler(record)
        except asyncio.CancelledError:
            raise  # shutting down: not finished, so not committed; it will be redelivered
        except Exception as exc:
            log.exception("handler failed on %s@%d; sending to the DLQ", partition, record.offset)
            try:
                await self._on_poison(record, exc)
            except Exception:
                # Leaving it unfinished would block the partition's commits forever.
                log.exception("could not dead-letter %s@%d; dropping it", partition, record.offset)
        finally:
            self._slots.release()
        self.window.finish(partition, record.offset)

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._commit_interval_s)
            try:
                await self.commit_finished()
            except Exception:
                # A failed commit (e.g. during a rebalance) is retried on the next tick;
                # the worst case is redelivery of finished work, which handlers absorb.
                log.warning("offset commit failed; will retry", exc_info=True)

    async def commit_finished(self) -> None:
        commits = self.window.uncommitted()
        if commits:
            await self._consumer.commit(commits)
            self.window.committed(commits)
