"""Reading how long a vendor asks us to wait before retrying.

Vendors say it in three ways: ``retry-after-ms`` (OpenAI, milliseconds), and ``Retry-After`` as
delay-seconds or as an HTTP date (RFC 9110 §10.2.3). The worker sleeps on the result, so it is
never negative and never absurd.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A vendor asking for more than this is either broken or telling us to go elsewhere; the worker
# should fall back to another target rather than hold a request for longer.
MAX_RETRY_AFTER_S = 3600.0


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that also works on a plain dict."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, candidate in headers.items():
        if key.lower() == wanted:
            return candidate
    return None


def retry_after_seconds(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``Retry-After``; None when absent or
    unreadable. ``now`` is injectable so HTTP-date forms can be tested."""
    millis = header(headers, "retry-after-ms")
    if millis is not None:
        seconds = _number(millis)
        if seconds is not None:
            return _bounded(seconds / 1000.0)
    raw = header(headers, "retry-after")
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return _bounded(seconds)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means a sloppy vendor.
        when = when.replace(tzinfo=UTC)
    return _bounded((when - (now or datetime.now(UTC))).total_seconds())


def _number(raw: str) -> float | None:
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if value == value else None  # NaN


def _bounded(seconds: float) -> float:
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
