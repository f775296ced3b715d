"""Chat calls received, by requested model: how many, and when each arrived.

An end-to-end test reads this to check what a gateway did upstream: that a failing model was
left alone while its outage lasted, that a fallback went to the right model, at what pace calls
were retried. A call is logged when its request has been read, before anything can fail or hang,
so calls that never get an answer are here too.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable

# Per model, the arrival times kept: enough for a long benchmark, bounded for an endless one.
# The count in ``by_model`` is not bounded.
MAX_TIMES_PER_MODEL = 100_000


def _epoch_ms() -> int:
    return time.time_ns() // 1_000_000


class CallLog:
    """``clock`` gives wall-clock epoch milliseconds, so times compare with a test's own; tests
    pass their own."""

    def __init__(self, clock: Callable[[], int] = _epoch_ms) -> None:
        self._clock = clock
        self.by_model: Counter[str] = Counter()
        self._times_ms: dict[str, deque[int]] = {}

    def record(self, model: str) -> None:
        self.by_model[model] += 1
        times = self._times_ms.get(model)
        if times is None:
            times = self._times_ms[model] = deque(maxlen=MAX_TIMES_PER_MODEL)
        times.append(self._clock())

    def times_ms(self, model: str) -> list[int]:
        """When each call to ``model`` arrived, oldest first: the latest
        ``MAX_TIMES_PER_MODEL``."""
        return list(self._times_ms.get(model, ()))

    def all_times_ms(self) -> dict[str, list[int]]:
        return {model: list(times) for model, times in self._times_ms.items()}

    def clear(self) -> None:
        self.by_model.clear()
        self._times_ms.clear()
