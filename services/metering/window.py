"""Time windows as people type them: ``30m``, ``1h``, ``7d``."""

from __future__ import annotations

import re
from datetime import timedelta

_WINDOW = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
# ClickHouse's month partitions and Kafka's retention make anything past a few years a typo.
MAX_WINDOW = timedelta(days=3660)


class InvalidWindowError(ValueError):
    pass


def parse_window(text: str) -> timedelta:
    match = _WINDOW.match(text.lower())
    if match is None:
        raise InvalidWindowError(
            f"invalid window {text!r}: use a number and a unit, s, m, h, d or w (30m, 1h, 7d)"
        )
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    # Checked before building the timedelta, which overflows on absurd inputs.
    if not 0 < seconds <= MAX_WINDOW.total_seconds():
        raise InvalidWindowError(f"invalid window {text!r}: must be above 0 and at most 10 years")
    return timedelta(seconds=seconds)
