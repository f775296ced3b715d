"""Trying again until a request's deadline: for work worth finishing late rather than never.

Switchyard's own parts (Redis, Kafka) come back from a restart in seconds, while a caller waits
until its request's deadline; so work that needs them (delivering an answer the vendor already
gave, handing an accepted request on) is retried that long, and no longer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class DeadlinePassed(Exception):
    """The work kept failing until its deadline; the last failure is its cause."""


async def retry_until(
    op: Callable[[], Awaitable[T]],
    *,
    deadline_ms: int,
    retry_on: tuple[type[BaseException], ...],
    every_s: float,
) -> T:
    """``op()``, tried again every ``every_s`` while it raises one of ``retry_on``, until
    ``deadline_ms`` (epoch ms); then ``DeadlinePassed``."""
    while True:
        try:
            return await op()
        except retry_on as exc:
            if time.time() + every_s >= deadline_ms / 1000:
                raise DeadlinePassed(repr(exc)) from exc
            await asyncio.sleep(every_s)
