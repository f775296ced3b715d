"""Timed outages, set at run time through ``/_sim/outage``: for a while, every call to one model
(or to every model) fails with one status, or hangs.

A directive breaks the one call whose prompt carries it; an outage breaks a model under traffic
the test does not write, such as a benchmark's or a gateway's own retries and probes. It beats
directives and error rates alike, as a vendor that is down answers nothing else. Outages end by
themselves, so a test that forgets to end one cannot break the tests after it for long.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeGuard

from services.vendorsim.directives import TIMEOUT
from services.vendorsim.faults import Mishap

ANY_MODEL = "*"
# The statuses a real vendor sends ``retry-after`` with: rate limited, unavailable, overloaded.
RETRY_AFTER_STATUSES = frozenset({429, 503, 529})
_FIELDS = frozenset({"model", "status", "seconds", "retry_after_s"})


@dataclass(frozen=True, slots=True)
class OutageOrder:
    """What ``POST /_sim/outage`` asks for. ``kind``: a status code or ``TIMEOUT``;
    ``retry_after_s``: ``None`` for the knobs' value."""

    model: str
    kind: int | str
    seconds: float
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class Outage:
    model: str
    kind: int | str
    ends_at: float  # on the board's clock
    retry_after_s: float | None = None

    def mishap(self, default_retry_after_s: float) -> Mishap:
        """What goes wrong with a call during this outage."""
        if self.kind == TIMEOUT:
            return Mishap(hang=True)
        assert isinstance(self.kind, int)
        if self.kind not in RETRY_AFTER_STATUSES:
            return Mishap(status=self.kind)
        retry_after_s = self.retry_after_s
        if retry_after_s is None:
            retry_after_s = default_retry_after_s
        return Mishap(status=self.kind, retry_after_s=retry_after_s)


class OutageError(ValueError):
    """An outage order was refused; the message says why."""


class OutageBoard:
    """The outages in force, at most one per model (``ANY_MODEL`` included).

    ``clock`` is monotonic, so a wall-clock jump neither ends nor stretches an outage; tests pass
    their own.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._outages: dict[str, Outage] = {}

    def start(self, order: OutageOrder) -> Outage:
        """Start an outage, replacing the one the same model had."""
        outage = Outage(
            model=order.model,
            kind=order.kind,
            ends_at=self._clock() + order.seconds,
            retry_after_s=order.retry_after_s,
        )
        self._outages[order.model] = outage
        return outage

    def end_all(self) -> None:
        self._outages.clear()

    def current(self, model: str) -> Outage | None:
        """The outage a call to ``model`` falls into: the model's own before the one for every
        model."""
        # Every call asks, and there is almost never an outage: answer that case at once.
        if not self._outages:
            return None
        self._forget_ended()
        return self._outages.get(model) or self._outages.get(ANY_MODEL)

    def active(self) -> list[Outage]:
        self._forget_ended()
        return list(self._outages.values())

    def remaining_s(self, outage: Outage) -> float:
        return max(0.0, outage.ends_at - self._clock())

    def _forget_ended(self) -> None:
        now = self._clock()
        ended = [model for model, outage in self._outages.items() if outage.ends_at <= now]
        for model in ended:
            del self._outages[model]


def parse_order(data: object) -> OutageOrder:
    """An ``OutageOrder`` from the JSON body of ``POST /_sim/outage``; raises ``OutageError``."""
    if not isinstance(data, dict):
        raise OutageError("the body must be a JSON object")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise OutageError(f"unknown fields: {', '.join(unknown)}")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise OutageError('model: a model id, or "*" for every model')
    seconds = data.get("seconds")
    if not _is_number(seconds) or seconds <= 0:
        raise OutageError("seconds: a number greater than 0")
    retry_after_s = data.get("retry_after_s")
    if retry_after_s is not None and (not _is_number(retry_after_s) or retry_after_s < 0):
        raise OutageError("retry_after_s: a number of seconds, 0 or more")
    return OutageOrder(
        model=model,
        kind=_kind(data.get("status")),
        seconds=float(seconds),
        retry_after_s=None if retry_after_s is None else float(retry_after_s),
    )


def _kind(status: object) -> int | str:
    if status == TIMEOUT:
        return TIMEOUT
    if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599:
        return status
    raise OutageError('status: an HTTP status from 400 to 599, or "timeout"')


def _is_number(value: object) -> TypeGuard[int | float]:
    # JSON ``true`` arrives as a bool, which Python counts as an int.
    return isinstance(value, int | float) and not isinstance(value, bool)
