"""``UsageRecorder``: prices a batch of usage events and writes each event exactly once.

Kafka delivers at least once, so the same event (same ``event_id``) can arrive twice: twice in one
batch, or again after a crash or a rebalance replays offsets that were processed but not
committed. The recorder drops repeats within the batch, asks the store which of the rest it holds
already, and inserts only the new ones. The consumer commits offsets only after this returns, so
at-least-once delivery plus this idempotent write gives each event exactly one row.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from contracts.catalogue import Catalogue
from contracts.usage import UsageEvent
from services.common.pricing import price
from services.metering.ledger import LedgerKeeper
from services.metering.metrics import MeteringMetrics
from services.metering.store import PricedEvent, UsageStore


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    inserted: int
    duplicates_in_batch: int
    duplicates_stored: int


class UsageRecorder:
    def __init__(
        self,
        store: UsageStore,
        catalogue: Catalogue,
        metrics: MeteringMetrics,
        ledger: LedgerKeeper | None = None,
    ) -> None:
        self._store = store
        self._catalogue = catalogue
        self._metrics = metrics
        self._ledger = ledger

    async def record(self, events: Sequence[UsageEvent]) -> RecordOutcome:
        """Price and store the events not stored yet. Raises if the store fails; nothing is then
        known to be written, and the caller must not commit the batch."""
        started = time.perf_counter()
        first_seen: dict[str, UsageEvent] = {}
        for event in events:
            first_seen.setdefault(event.event_id, event)
        unique = list(first_seen.values())
        stored = await self._store.existing_event_ids(unique)
        fresh = [event for event in unique if event.event_id not in stored]
        priced = [
            PricedEvent(
                event=event,
                pricing=price(event, self._catalogue.get(event.model)),
                price_version=self._catalogue.version,
            )
            for event in fresh
        ]
        if self._ledger is None:
            await self._store.insert_events(priced)
        else:
            # Insert and settle as one step as far as a ledger rebuild can tell
            # (services.metering.ledger).
            async with self._ledger.lock:
                try:
                    await self._store.insert_events(priced)
                except Exception:
                    # The rows may be in anyway (an answer lost on the way back): their replay
                    # will find them stored and not settle them, so the ledgers rebuild.
                    self._ledger.resync()
                    raise
                await self._ledger.settle(priced)

        self._metrics.batch_insert_seconds.observe(time.perf_counter() - started)
        self._metrics.events_inserted.inc(len(priced))
        outcome = RecordOutcome(
            inserted=len(priced),
            duplicates_in_batch=len(events) - len(unique),
            duplicates_stored=len(unique) - len(fresh),
        )
        self._metrics.duplicates_skipped.labels(where="batch").inc(outcome.duplicates_in_batch)
        self._metrics.duplicates_skipped.labels(where="store").inc(outcome.duplicates_stored)
        for item in priced:
            if not item.pricing.priced:
                self._metrics.unpriced.labels(model=item.event.model).inc()
        return outcome
