"""The logic of ``services.common.audit`` with a stand-in for the producer: ``note`` never raises
and keeps a bounded number of sends pending, ``record`` translates Kafka's errors, and
``KeyUseSummary`` counts per key and keeps what it could not send. Against the real Kafka:
tests/integration/metering/test_audit_consumer.py."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from contracts.audit import AuditActor, AuditEvent
from services.common.audit import AuditTrail, AuditUnavailable, KeyUseSummary


class _Producer:
    """Holds every send until ``open`` is set; fails them while ``failing`` is set."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.failing = False
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        await self.open.wait()
        if self.failing:
            raise KafkaConnectionError("broker away")
        self.sent.append((topic, key, value))

    def events(self) -> list[AuditEvent]:
        return [AuditEvent.model_validate_json(value) for _, _, value in self.sent]


def trail_of(producer: _Producer, **kwargs: Any) -> AuditTrail:
    # The stand-in has the one method AuditTrail calls (aiokafka is untyped: no cast needed).
    return AuditTrail(producer, topic="audit-test", **kwargs)


def denied(project_id: str | None = "proj_a") -> AuditEvent:
    return AuditEvent(
        type="request.denied",
        project_id=project_id,
        actor=AuditActor(type="api_key", api_key_id="key_1"),
        outcome="denied",
        details={"reason": "rate_limited"},
    )


async def test_record_keys_by_project_or_org() -> None:
    producer = _Producer()
    trail = trail_of(producer)

    await trail.record(denied("proj_a"))
    await trail.record(denied(None))

    assert [(topic, key) for topic, key, _ in producer.sent] == [
        ("audit-test", b"proj_a"),
        ("audit-test", b"org"),
    ]


async def test_record_raises_audit_unavailable_on_kafka_errors_and_timeouts() -> None:
    producer = _Producer()
    producer.failing = True
    with pytest.raises(AuditUnavailable, match="broker away"):
        await trail_of(producer).record(denied())

    producer.failing = False
    producer.open.clear()
    with pytest.raises(AuditUnavailable):
        await trail_of(producer, record_timeout_s=0.05).record(denied())


async def test_note_queues_without_waiting_and_bounds_the_pending_sends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = _Producer()
    producer.open.clear()
    trail = trail_of(producer, max_pending=3)
    events = [denied() for _ in range(5)]

    for event in events:
        trail.note(event)  # returns at once: nothing was sent yet

    assert (trail.pending, trail.dropped, producer.sent) == (3, 2, [])
    assert "dropping" in caplog.text
    producer.open.set()
    await trail.drain()
    assert trail.pending == 0
    assert [e.id for e in producer.events()] == [e.id for e in events[:3]]


async def test_note_never_raises_and_logs_a_failed_send(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = _Producer()
    producer.failing = True
    trail = trail_of(producer)
    event = denied()

    with caplog.at_level(logging.WARNING, logger="services.common.audit"):
        trail.note(event)
        await trail.drain()

    assert f"audit event {event.id} (request.denied) not recorded" in caplog.text
    assert "rate_limited" not in caplog.text  # the event's details stay out of the log


def test_note_without_a_running_loop_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    trail_of(_Producer()).note(denied())

    assert "not queued" in caplog.text


async def test_the_summary_sends_one_event_per_key_with_its_count_and_window() -> None:
    producer = _Producer()
    summary = KeyUseSummary(trail_of(producer))
    for _ in range(3):
        summary.count("key_1", "proj_a")
    summary.count("key_2", "proj_b")
    summary.count("key_admin", None)

    assert await summary.flush() == 3
    assert await summary.flush() == 0  # a quiet window sends nothing

    sent = {e.target_id: e for e in producer.events()}
    assert {k: e.details["count"] for k, e in sent.items()} == {
        "key_1": 3,
        "key_2": 1,
        "key_admin": 1,
    }
    used = sent["key_1"]
    assert (used.type, used.project_id, used.actor.api_key_id) == (
        "api_key.used",
        "proj_a",
        "key_1",
    )
    start, end = used.details["window_start"], used.details["window_end"]
    assert isinstance(start, int)
    assert isinstance(end, int)
    assert start <= end == used.effective_at
    assert sent["key_admin"].project_id is None
    assert [key for _, key, _ in producer.sent].count(b"org") == 1


async def test_a_window_that_cannot_be_sent_joins_the_next() -> None:
    producer = _Producer()
    producer.failing = True
    summary = KeyUseSummary(trail_of(producer, record_timeout_s=0.05))
    summary.count("key_1", "proj_a")
    summary.count("key_1", "proj_a")

    assert await summary.flush() == 0
    summary.count("key_1", "proj_a")
    producer.failing = False
    assert await summary.flush() == 1

    [event] = producer.events()
    assert event.details["count"] == 3


async def test_run_flushes_every_interval_and_once_more_when_cancelled() -> None:
    producer = _Producer()
    summary = KeyUseSummary(trail_of(producer), interval_s=0.05)
    runner = asyncio.create_task(summary.run())
    summary.count("key_1", "proj_a")
    async with asyncio.timeout(10):
        while not producer.sent:  # noqa: ASYNC110 - the loop signals nothing to await
            await asyncio.sleep(0.01)
    summary.count("key_2", "proj_a")
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner

    assert sorted(e.target_id or "" for e in producer.events()) == ["key_1", "key_2"]


async def test_a_flush_cancelled_midway_keeps_its_counts() -> None:
    producer = _Producer()
    producer.open.clear()
    summary = KeyUseSummary(trail_of(producer))
    summary.count("key_1", "proj_a")
    flushing = asyncio.create_task(summary.flush())
    await asyncio.sleep(0.01)  # the send is waiting on the producer
    flushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flushing

    producer.open.set()
    assert await summary.flush() == 1
    [event] = producer.events()
    assert event.details["count"] == 1
