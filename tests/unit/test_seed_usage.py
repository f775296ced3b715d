"""scripts/seed_usage.py: the same seed gives the same events, and they are events metering
would accept, shaped as real traffic is."""

from __future__ import annotations

from collections import Counter, defaultdict

from contracts.replies import OutcomeStatus
from contracts.usage import UsageEvent
from scripts.seed_usage import DAY_MS, generate_usage

END_MS = 1_767_268_800_000  # 2026-01-01T12:00:00Z
COUNT = 5_000


def _events(seed: int = 7) -> list[UsageEvent]:
    return list(generate_usage(COUNT, seed=seed, days=30, end_ms=END_MS))


def test_the_same_seed_gives_the_same_events() -> None:
    first, again = _events(), _events()
    assert [e.to_bytes() for e in first] == [e.to_bytes() for e in again]
    assert [e.to_bytes() for e in first] != [e.to_bytes() for e in _events(seed=8)]


def test_events_are_valid_and_spread_over_the_range() -> None:
    events = _events()
    assert len(events) == COUNT
    for event in events:
        assert UsageEvent.model_validate_json(event.to_bytes()) == event
        assert END_MS - 30 * DAY_MS <= event.ts_ms < END_MS + DAY_MS
    assert len({e.event_id for e in events}) == COUNT
    assert len({e.tenant for e in events}) > 10
    assert len({e.model for e in events}) > 10
    assert any(e.usage.cache_read_tokens for e in events)
    assert any(e.usage.cache_write_tokens for e in events)
    assert any(e.usage.reasoning_tokens for e in events)
    assert any(e.batch_id for e in events)
    assert any(e.task_type for e in events)
    assert any(not e.task_type for e in events)


def test_statuses_and_attempt_chains() -> None:
    events = _events()
    statuses = Counter(e.status for e in events)
    assert 0.01 * COUNT < statuses[OutcomeStatus.ERROR] < 0.15 * COUNT
    assert all((e.error_class is None) == (e.status is OutcomeStatus.OK) for e in events)
    by_request: dict[str, list[UsageEvent]] = defaultdict(list)
    for event in events:
        by_request[event.request_id].append(event)
    retried = 0
    for attempts in by_request.values():
        # Attempts of a request are numbered 0, 1, ... in time order; every one but the last
        # failed; request-level facts are the same on each.
        assert [a.attempt for a in attempts] == list(range(len(attempts)))
        assert [a.ts_ms for a in attempts] == sorted(a.ts_ms for a in attempts)
        assert all(a.status is OutcomeStatus.ERROR for a in attempts[:-1])
        assert (
            len({(a.tenant, a.key_id, a.user_tag, a.task_type, a.batch_id) for a in attempts}) == 1
        )
        retried += len(attempts) > 1
    assert retried > 0
