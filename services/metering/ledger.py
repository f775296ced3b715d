"""Keeps the credit ledger in Redis (``services.common.credit``) in step with what metering
writes to ClickHouse, the system of record for spend.

- **Settle.** After a batch of usage is inserted, each new priced event of a project is settled
  on the ledger: its cost (rounded up to a billionth of a dollar, as the ledger counts) joins the
  project's spend, and the request's hold goes once every attempt is settled. Insert and settle
  happen under one lock with the rebuild, so a rebuild never reads ClickHouse between them.
- **Rebuild.** A ledger Redis lost (restarted, wiped) is not ready; ingress asks for it and this
  keeper sets it from ClickHouse's ``spend_month`` (each event's cost rounded up, per project and
  month, kept for ever whatever the usage rows' TTL): for all time and for the month. At start
  every ledger is marked not ready, because this process may have died between an insert and its
  settle; the same happens after a settle that Redis refused.

With several metering replicas, one replica's insert may fall between another's rebuild read and
its write: the rebuilt spend then lacks that batch until the next rebuild. One replica (the
default) is exact.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import redis.asyncio as aioredis
from clickhouse_connect.driver.client import Client

from contracts._base import now_ms
from services.common.access import ADMIN
from services.common.credit import Charge, CreditLedger, month_of, usd_to_nanos_ceil
from services.common.redis_client import REDIS_DOWN
from services.metering.rows import stored_cost
from services.metering.store import PricedEvent, UsageStore

log = logging.getLogger(__name__)

_POLL_S = 0.1
_RETRY_S = 1.0

# Spend as the ledger counts it (each event rounded up to a nano-dollar), kept per project and
# month by a materialised view without a TTL (migration 0008): expired usage rows never lower it.
_SPEND_SQL = """
SELECT
    toInt64(sum(spent_nanos)) AS spent,
    toInt64(sumIf(spent_nanos, month = {month:UInt32})) AS month
FROM spend_month
WHERE tenant = {tenant:String}
"""


class LedgerKeeper:
    def __init__(self, store: UsageStore, redis: aioredis.Redis) -> None:
        self.ledger = CreditLedger(redis)
        self._store = store
        self.lock = asyncio.Lock()
        self._resync = True  # forget every ledger once Redis answers

    def resync(self) -> None:
        """Rebuild every ledger from ClickHouse at the next turn: what it settled can no
        longer be trusted to match what is stored."""
        self._resync = True

    async def settle(self, events: Sequence[PricedEvent]) -> None:
        """Called with ``lock`` held, right after ``events`` were inserted."""
        charges = [
            Charge(
                project=item.event.tenant,
                request_id=item.event.request_id,
                cost_nanos=usd_to_nanos_ceil(stored_cost(item.pricing.cost_usd)),
                month=month_of(item.event.ts_ms),
            )
            for item in events
            if item.event.tenant != ADMIN
        ]
        if not charges:
            return
        try:
            await self.ledger.settle(charges)
        except REDIS_DOWN:
            # The events are in ClickHouse: the ledgers rebuild from there once Redis is back.
            log.warning("could not settle %d charges: Redis is down", len(charges))
            self._resync = True

    async def run(self) -> None:
        while True:
            try:
                if self._resync:
                    async with self.lock:
                        forgotten = await self.ledger.forget_ready()
                    self._resync = False
                    log.info("credit ledgers marked for rebuild: %d", forgotten)
                for project in await self.ledger.pending_rebuilds():
                    await self.rebuild(project)
            except REDIS_DOWN:
                await asyncio.sleep(_RETRY_S)
                continue
            except Exception:
                log.exception("credit ledger upkeep failed")
                await asyncio.sleep(_RETRY_S)
                continue
            await asyncio.sleep(_POLL_S)

    async def rebuild(self, project: str) -> None:
        month = month_of(now_ms())
        async with self.lock:
            spent, month_spent = await self._store.on_client(
                lambda client: _spend(client, project, month)
            )
            if await self.ledger.init(
                project, spent_nanos=spent, month=month, month_spent_nanos=month_spent
            ):
                log.info("credit ledger of %s rebuilt from ClickHouse", project)


def _spend(client: Client, project: str, month: str) -> tuple[int, int]:
    result = client.query(
        _SPEND_SQL, parameters={"tenant": project, "month": int(month.replace("-", ""))}
    )
    spent, month_spent = result.result_rows[0]
    return int(spent or 0), int(month_spent or 0)
