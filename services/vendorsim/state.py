"""The simulator's mutable state: the current knobs, the fault dice, the outages, ids, request
counts and the log of calls by model.

One ``SimState`` per app. It is touched only from the event loop's thread, so it needs no locks.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter

from services.vendorsim.calls import CallLog
from services.vendorsim.faults import FaultDice
from services.vendorsim.knobs import SimKnobs
from services.vendorsim.outages import OutageBoard


class SimState:
    def __init__(self, knobs: SimKnobs) -> None:
        self._initial = knobs
        self.knobs = knobs
        self.dice = FaultDice(knobs.seed)
        # Ids must be unique across restarts too (a gateway may store them), hence the prefix.
        self._id_prefix = os.urandom(4).hex()
        self._serials = itertools.count(1)
        self.by_status: Counter[int] = Counter()
        self.by_endpoint: Counter[str] = Counter()
        self.outages = OutageBoard()
        self.calls = CallLog()

    def configure(self, changes: dict[str, object]) -> SimKnobs:
        """Apply knob changes; raises ``KnobsError`` and changes nothing if one is refused."""
        knobs = self.knobs.updated(changes)
        if "seed" in changes:
            self.dice.reseed(knobs.seed)
        self.knobs = knobs
        return knobs

    def reset(self) -> None:
        """Back to the knobs the app started with; end every outage; forget failure counts,
        request counts and the call log."""
        self.knobs = self._initial
        self.dice.reseed(self._initial.seed)
        self.dice.forget()
        self.outages.end_all()
        self.by_status.clear()
        self.by_endpoint.clear()
        self.calls.clear()

    def serial(self) -> str:
        """A new id suffix for a response or a request id."""
        return f"sim{self._id_prefix}{next(self._serials):08x}"

    def record(self, endpoint: str, status: int) -> None:
        self.by_endpoint[endpoint] += 1
        self.by_status[status] += 1
