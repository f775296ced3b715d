"""A component's background loop: one step every so often, from ``start()`` until ``stop()``.

Every long-lived helper of a service (the Kafka watch, the circuit snapshot, the statistics
flush, the config reload, claim and lease renewal, heartbeats, health checks) is such a loop;
this is the one place that starts, cancels and awaits them. A step that raises is logged and
the loop goes on: a background helper that dies quietly is worse than one that complains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[None]]


class Periodic:
    def __init__(self, name: str, every_s: float, step: Step, *, at_start: bool = False) -> None:
        """``at_start``: run one step in ``start()`` itself, before it returns."""
        self.name = name
        self.every_s = every_s
        self._step = step
        self._at_start = at_start
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._at_start:
            await self._run_step()
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            await self._run_step()

    async def _run_step(self) -> None:
        try:
            await self._step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: a step failed; the loop goes on", self.name)
