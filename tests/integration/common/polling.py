"""Waiting, boundedly, for a condition that only polling can observe (a committed offset, a key
expiring in Redis): there is no event to await. Reaching the bound fails the test with what was
awaited; it is never a measurement."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

import pytest

WAIT_S = 30.0


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    what: str,
    *,
    timeout_s: float = WAIT_S,
    interval_s: float = 0.01,
) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                met = condition()
                if inspect.isawaitable(met):
                    met = await met
                if met:
                    return
                await asyncio.sleep(interval_s)
    except TimeoutError:
        pytest.fail(f"never happened within {timeout_s} s: {what}")
