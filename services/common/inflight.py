"""Out-of-order completion, in-order commit.

A worker keeps many vendor calls in flight per partition, and they finish in any order. Kafka only
stores one committed offset per partition, meaning "everything before this is done". So the offset
we may commit is the one just past the oldest message still unfinished: committing further would
lose that message if we crashed; committing less only means redelivering finished work, which the
consumers' idempotency absorbs.

This module is pure bookkeeping; ``services.common.consumer`` drives it.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


class PartitionWindow:
    """The offsets of one partition that were handed out and not yet committed."""

    __slots__ = ("_committed", "_done", "_pending", "_watermark")

    def __init__(self) -> None:
        self._pending: list[int] = []  # min-heap of offsets started
        self._done: set[int] = set()
        self._watermark: int | None = None  # next offset to commit (last committable + 1)
        self._committed: int | None = None

    def start(self, offset: int) -> None:
        heapq.heappush(self._pending, offset)

    def finish(self, offset: int) -> None:
        self._done.add(offset)
        # Advance past every finished offset at the head of the window.
        while self._pending and self._pending[0] in self._done:
            head = heapq.heappop(self._pending)
            self._done.discard(head)
            self._watermark = head + 1

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def uncommitted(self) -> int | None:
        """The offset to commit (Kafka's "next offset to read"), if it moved since the last
        successful commit."""
        return None if self._watermark == self._committed else self._watermark

    def committed(self, offset: int) -> None:
        self._committed = offset


class InflightWindow(Generic[P]):
    """Windows for every partition a consumer holds, keyed by its topic-partition."""

    def __init__(self) -> None:
        self._partitions: dict[P, PartitionWindow] = {}

    def start(self, partition: P, offset: int) -> None:
        self._partitions.setdefault(partition, PartitionWindow()).start(offset)

    def finish(self, partition: P, offset: int) -> None:
        window = self._partitions.get(partition)
        if window is not None:  # the partition may have been revoked meanwhile
            window.finish(offset)

    def uncommitted(self) -> dict[P, int]:
        commits: dict[P, int] = {}
        for partition, window in self._partitions.items():
            offset = window.uncommitted()
            if offset is not None:
                commits[partition] = offset
        return commits

    def committed(self, commits: dict[P, int]) -> None:
        for partition, offset in commits.items():
            window = self._partitions.get(partition)
            if window is not None:
                window.committed(offset)

    def forget(self, partitions: set[P]) -> None:
        """Drop revoked partitions: their unfinished messages belong to another consumer now."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    @property
    def in_flight(self) -> int:
        return sum(window.in_flight for window in self._partitions.values())
