"""Which requests fail, and how: rolls the knobs' error and fault rates, applies ``fail``
directives, and remembers how often each conversation asked to fail (``[sim:fail=429x2]``).

Outages (``outages``) are not decided here: they are checked first, by the caller, and beat
everything in this module."""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass

from services.vendorsim.directives import TIMEOUT, Directives
from services.vendorsim.knobs import SimKnobs

# Enough for every distinct failing prompt of a long test run; the oldest are forgotten first.
LEDGER_SIZE = 65_536


@dataclass(frozen=True, slots=True)
class Mishap:
    """What goes wrong with one request. ``status``: answer with this error instead of a reply;
    ``hang``: answer nothing for ``timeout_hang_s``; ``disconnect``/``malformed``: start the reply,
    then drop the connection or send a line that is not JSON halfway through."""

    status: int | None = None
    hang: bool = False
    disconnect: bool = False
    malformed: bool = False
    # Sent as ``retry-after`` with ``status``; ``None``: the knobs' value, and only on a 429.
    retry_after_s: float | None = None


NO_MISHAP = Mishap()


class FaultDice:
    def __init__(self, seed: int | None) -> None:
        self._random = random.Random(seed)
        # Keyed by conversation digest and the model the directive names (``None``: any model),
        # so ``fail=503x1@a`` and ``fail=500x1@b`` in one prompt each fail their model once.
        self._strikes: OrderedDict[tuple[bytes, str | None], int] = OrderedDict()

    def reseed(self, seed: int | None) -> None:
        self._random.seed(seed)

    def forget(self) -> None:
        self._strikes.clear()

    def roll(self, knobs: SimKnobs, directives: Directives, model: str, digest: bytes) -> Mishap:
        failure = directives.failure_for(model)
        if failure is not None and (
            failure.times is None or self._strike((digest, failure.model)) <= failure.times
        ):
            if failure.kind == TIMEOUT:
                return Mishap(hang=True)
            assert isinstance(failure.kind, int)
            return Mishap(status=failure.kind)
        error = self._error(knobs)
        if error is not None:
            return error
        disconnect = directives.disconnect or self._chance(knobs.fault_disconnect_rate)
        malformed = directives.malformed or self._chance(knobs.fault_malformed_rate)
        if disconnect or malformed:
            return Mishap(disconnect=disconnect, malformed=malformed)
        return NO_MISHAP

    def _error(self, knobs: SimKnobs) -> Mishap | None:
        rates = (
            knobs.error_rate_429,
            knobs.error_rate_500,
            knobs.error_rate_529,
            knobs.error_rate_timeout,
        )
        if not any(rates):
            return None
        roll = self._random.random()
        for status, rate in zip((429, 500, 529, 0), rates, strict=True):
            if roll < rate:
                return Mishap(hang=True) if status == 0 else Mishap(status=status)
            roll -= rate
        return None

    def _chance(self, rate: float) -> bool:
        return rate > 0 and self._random.random() < rate

    def _strike(self, key: tuple[bytes, str | None]) -> int:
        count = self._strikes.pop(key, 0) + 1
        self._strikes[key] = count
        if len(self._strikes) > LEDGER_SIZE:
            self._strikes.popitem(last=False)
        return count
