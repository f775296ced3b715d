"""Publishing audit events to ``sy.audit.v1``: awaited for admin actions, fire-and-forget on the
request path, and a periodic summary of each key's use.

Messages are keyed by project id (``org`` for organisation-level events), so the events of one
project land on one partition and keep their order.

- ``AuditTrail.record``: an admin action is audited before it is answered. It returns once the
  broker has the event, or raises ``AuditUnavailable``: the caller answers 503 rather than make a
  change nobody can trace (as ``GovernanceWriter`` does for the change itself).
- ``AuditTrail.note``: a refused request must not wait for Kafka, nor fail because Kafka is
  away. The send is queued and forgotten; a failure is logged. At most ``max_pending`` sends are
  in flight: past that, events are dropped (and counted) rather than letting a flood of bad keys
  grow memory without bound.
- ``KeyUseSummary``: one ``api_key.used`` event per key and window instead of one per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts._base import now_ms
from contracts.audit import AuditActor, AuditEvent, AuditEventType
from contracts.topics import AUDIT

log = logging.getLogger(__name__)

ORG_KEY = b"org"
_RECORD_TIMEOUT_S = 10.0
_DROP_LOG_EVERY = 1000


class AuditUnavailable(Exception):
    """An event could not be handed to Kafka in time; the audited action must not go ahead."""


def message_key(event: AuditEvent) -> bytes:
    return event.project_id.encode() if event.project_id else ORG_KEY


class AuditTrail:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        topic: str = AUDIT.name,
        max_pending: int = 10_000,
        record_timeout_s: float = _RECORD_TIMEOUT_S,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._max_pending = max_pending
        self._record_timeout_s = record_timeout_s
        self._pending: set[asyncio.Task[None]] = set()
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def record(self, event: AuditEvent) -> None:
        """Send and wait for the broker's acknowledgement; ``AuditUnavailable`` if it did not
        come within ``record_timeout_s``."""
        try:
            async with asyncio.timeout(self._record_timeout_s):
                await self._producer.send_and_wait(
                    self._topic, event.to_bytes(), key=message_key(event)
                )
        except (KafkaError, TimeoutError) as exc:
            raise AuditUnavailable(str(exc) or type(exc).__name__) from exc

    def note(self, event: AuditEvent) -> None:
        """Queue the send and return at once. Never raises."""
        try:
            if len(self._pending) >= self._max_pending:
                self._drop(event)
                return
            task = asyncio.get_running_loop().create_task(self._send(event))
        except Exception:  # no running loop, say: the caller's request must go on regardless
            log.exception("audit event %s (%s) not queued", event.id, event.type)
            return
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait for the queued sends (at shutdown, before the producer stops)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout_s)

    async def _send(self, event: AuditEvent) -> None:
        try:
            await self.record(event)
        except Exception:
            # The event is lost; its type and id say what, nothing in it is secret or text.
            log.warning("audit event %s (%s) not recorded", event.id, event.type, exc_info=True)

    def _drop(self, event: AuditEvent) -> None:
        if self.dropped % _DROP_LOG_EVERY == 0:
            log.warning(
                "audit: %d sends pending, dropping %s (%s); %d dropped so far",
                len(self._pending),
                event.id,
                event.type,
                self.dropped + 1,
            )
        self.dropped += 1


@dataclass(frozen=True, slots=True)
class _Window:
    start_ms: int
    counts: Counter[tuple[str, str | None]]


class KeyUseSummary:
    """Counts requests per (key id, project id) in memory and, every ``interval_s``, records one
    ``api_key.used`` event per key with the count and the window.

    The ingress calls ``count`` on every authenticated request and runs ``run()`` as a background
    task; cancelling that task flushes the last window before it ends. A window that cannot be
    recorded (Kafka away) is not lost: its counts join the next window, which then starts where
    the failed one did.
    """

    def __init__(
        self,
        trail: AuditTrail,
        *,
        interval_s: float = 60.0,
        flush_timeout_s: float = 10.0,
    ) -> None:
        self._trail = trail
        self._interval_s = interval_s
        self._flush_timeout_s = flush_timeout_s
        self._window = _Window(now_ms(), Counter())

    def count(self, key_id: str, project_id: str | None) -> None:
        self._window.counts[(key_id, project_id)] += 1

    async def run(self) -> None:
        """Flush every ``interval_s`` until cancelled; flush once more on the way out."""
        try:
            next_at = time.monotonic() + self._interval_s
            while True:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += self._interval_s
                await self.flush()
        finally:
            try:
                async with asyncio.timeout(self._flush_timeout_s):
                    await self.flush()
            except Exception:
                log.warning("audit: the last key-use summary was not recorded", exc_info=True)

    async def flush(self) -> int:
        """Record the current window's counts and start a new window; return the events
        recorded. Counts not recorded (Kafka away, or the flush cancelled midway) stay for the
        next window."""
        window = self._window
        end_ms = now_ms()
        self._window = _Window(end_ms, Counter())
        if not window.counts:
            return 0
        uses = list(window.counts.items())
        sent: set[tuple[str, str | None]] = set()

        async def send(key: tuple[str, str | None], count: int) -> None:
            await self._trail.record(_key_used(*key, count, window.start_ms, end_ms))
            sent.add(key)

        try:
            # Concurrently: the producer batches them, and a Kafka outage costs one timeout,
            # not one per key.
            await asyncio.gather(*(send(k, c) for k, c in uses), return_exceptions=True)
        finally:
            unsent = Counter({key: count for key, count in uses if key not in sent})
            if unsent:
                log.warning("audit: key-use summary of %d keys not recorded; kept", len(unsent))
                self._window = _Window(window.start_ms, unsent + self._window.counts)
        return len(sent)


def _key_used(
    key_id: str, project_id: str | None, count: int, start_ms: int, end_ms: int
) -> AuditEvent:
    return AuditEvent(
        type=AuditEventType.API_KEY_USED,
        ts_ms=end_ms,
        project_id=project_id,
        actor=AuditActor(type="api_key", api_key_id=key_id),
        target_id=key_id,
        details={"count": count, "window_start": start_ms // 1000, "window_end": end_ms // 1000},
    )
