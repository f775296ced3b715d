"""``AuditConsumer``: reads ``sy.audit.v1`` in batches, in its own consumer group, and writes
each audit event to ``audit_log`` exactly once.

The batching, dead-lettering and commit semantics are ``BatchConsumer``'s, as for usage: offsets
are committed only after the batch is in ClickHouse; a failed write is read again; a message
that is not an ``AuditEvent`` goes to the DLQ. Kafka delivers at least once, so ``AuditRecorder``
drops an event repeated within the batch, asks the store which of the rest it holds already
(by id) and inserts only the new ones: a redelivered event is written once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram

from contracts.audit import AuditEvent
from contracts.topics import AUDIT
from services.metering.audit_store import AuditStore
from services.metering.consumer import BatchConsumer, ConsumerCounters

GROUP_ID = "sy-metering-audit"


class AuditMetrics:
    """The audit consumer's metrics, in the service's registry beside the usage ones."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events_consumed = Counter(
            "sy_metering_audit_events_consumed",
            "Messages read from the audit topic: duplicates, poison and re-reads included.",
            registry=registry,
        )
        self.events_inserted = Counter(
            "sy_metering_audit_events_inserted",
            "Audit events written to ClickHouse.",
            registry=registry,
        )
        self.duplicates_skipped = Counter(
            "sy_metering_audit_duplicates_skipped",
            "Redelivered audit events not written again.",
            registry=registry,
        )
        self.poison = Counter(
            "sy_metering_audit_poison_messages",
            "Messages on the audit topic that are not audit events; sent to the DLQ.",
            registry=registry,
        )
        self.insert_failures = Counter(
            "sy_metering_audit_insert_failures",
            "Audit batch inserts that failed and were retried.",
            registry=registry,
        )
        self.batch_insert_seconds = Histogram(
            "sy_metering_audit_batch_insert_seconds",
            "Time to dedupe and insert one audit batch into ClickHouse.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )


class AuditRecorder:
    def __init__(self, store: AuditStore, metrics: AuditMetrics) -> None:
        self._store = store
        self._metrics = metrics

    async def record(self, events: Sequence[AuditEvent]) -> int:
        """Store the events not stored yet; return how many were inserted. Raises if the store
        fails; the caller must then not commit the batch."""
        started = time.perf_counter()
        first_seen: dict[str, AuditEvent] = {}
        for event in events:
            first_seen.setdefault(event.id, event)
        unique = list(first_seen.values())
        stored = await self._store.existing_ids(unique)
        fresh = [event for event in unique if event.id not in stored]
        await self._store.insert(fresh)
        self._metrics.batch_insert_seconds.observe(time.perf_counter() - started)
        self._metrics.events_inserted.inc(len(fresh))
        self._metrics.duplicates_skipped.inc(len(events) - len(fresh))
        return len(fresh)


class AuditConsumer(BatchConsumer[AuditEvent]):
    def __init__(
        self,
        *,
        bootstrap: str,
        recorder: AuditRecorder,
        metrics: AuditMetrics,
        group_id: str = GROUP_ID,
        topic: str = AUDIT.name,
        batch_max_events: int = 500,
        batch_max_wait_ms: int = 200,
    ) -> None:
        super().__init__(
            bootstrap=bootstrap,
            topic=topic,
            group_id=group_id,
            parse=AuditEvent.model_validate_json,
            write=recorder.record,
            counters=ConsumerCounters(
                consumed=metrics.events_consumed,
                poison=metrics.poison,
                failures=metrics.insert_failures,
            ),
            what="audit",
            batch_max_events=batch_max_events,
            batch_max_wait_ms=batch_max_wait_ms,
        )
