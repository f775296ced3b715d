"""Per-attempt vendor timeouts: bounded by the request's deadline, configurable per provider."""

from __future__ import annotations

import pytest

from services.workers.settings import WorkerSettings
from services.workers.timeouts import VendorTimeouts


def test_a_sync_attempt_is_bounded_by_the_response_timeout_and_the_deadline() -> None:
    timeouts = VendorTimeouts(connect_s=5, response_s=120, stream_idle_s=30)
    roomy = timeouts.for_attempt(stream=False, remaining_s=300)
    assert (roomy.total, roomy.connect, roomy.sock_read) == (120, 5, None)
    tight = timeouts.for_attempt(stream=False, remaining_s=3)
    assert (tight.total, tight.connect) == (3, 3)


def test_a_stream_may_run_to_the_deadline_but_never_pause_longer_than_its_idle_timeout() -> None:
    timeouts = VendorTimeouts(connect_s=5, response_s=120, stream_idle_s=30)
    roomy = timeouts.for_attempt(stream=True, remaining_s=300)
    assert (roomy.total, roomy.sock_read) == (300, 30)
    tight = timeouts.for_attempt(stream=True, remaining_s=2)
    assert (tight.total, tight.sock_read, tight.connect) == (2, 2, 2)


def test_a_passed_deadline_still_gives_a_positive_timeout() -> None:
    timeout = VendorTimeouts().for_attempt(stream=False, remaining_s=-1)
    assert timeout.total is not None
    assert 0 < timeout.total < 0.01


def test_timeouts_come_from_the_environment_per_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_VENDOR_TIMEOUTS", '{"response_s": 60}')
    monkeypatch.setenv(
        "SWITCHYARD_VENDOR_TIMEOUTS_BY_PROVIDER", '{"anthropic": {"stream_idle_s": 90}}'
    )
    settings = WorkerSettings()
    assert settings.timeouts_for("openai") == VendorTimeouts(response_s=60)
    assert settings.timeouts_for("anthropic") == VendorTimeouts(stream_idle_s=90)


def test_a_non_positive_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        VendorTimeouts(response_s=0)
