"""The metering service's Prometheus metrics, in a registry of their own per service instance
(tests build several instances in one process; a global registry would refuse the second)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class MeteringMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.events_consumed = Counter(
            "sy_metering_events_consumed",
            "Messages read from the usage topic: duplicates, poison and re-reads of a failed"
            " batch included.",
            registry=self.registry,
        )
        self.events_inserted = Counter(
            "sy_metering_events_inserted",
            "Usage events written to ClickHouse.",
            registry=self.registry,
        )
        self.duplicates_skipped = Counter(
            "sy_metering_duplicates_skipped",
            "Redelivered usage events not written again.",
            ["where"],  # "batch": twice in one batch; "store": stored by an earlier batch
            registry=self.registry,
        )
        self.unpriced = Counter(
            "sy_metering_unpriced_events",
            "Successful usage events stored at cost 0 because the catalogue has no price.",
            ["model"],  # canonical ids: bounded by the catalogue, plus the odd unknown
            registry=self.registry,
        )
        self.poison = Counter(
            "sy_metering_poison_messages",
            "Messages on the usage topic that are not usage events; sent to the DLQ.",
            registry=self.registry,
        )
        self.insert_failures = Counter(
            "sy_metering_insert_failures",
            "Batch inserts that failed and were retried.",
            registry=self.registry,
        )
        self.batch_insert_seconds = Histogram(
            "sy_metering_batch_insert_seconds",
            "Time to dedupe and insert one batch into ClickHouse.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
