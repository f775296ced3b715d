"""Running a headless service: the event loop, signals, and a clean stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence

import uvloop

from services.common.consumer import ConcurrentConsumer
from services.common.ops import HealthCheck, ops_server


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)`` on uvloop; SIGTERM and SIGINT set ``stop``, and ``main`` is expected
    to finish its in-flight work and return."""

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    uvloop.run(_run())


async def run_consumers(
    stop: asyncio.Event,
    loops: Sequence[ConcurrentConsumer],
    *,
    ops_port: int,
    ops_host: str = "127.0.0.1",
    health: HealthCheck | None = None,
) -> None:
    """Run consumer loops and the ops endpoint until ``stop`` is set or a loop dies.

    A loop that dies (say, Kafka refused us for good) ends the process with its error instead
    of leaving a live-looking process that consumes nothing; the supervisor restarts it.
    """
    tasks = [asyncio.create_task(loop.run(), name="consumer") for loop in loops]

    def check() -> dict[str, bool]:
        parts = {"consumers": all(not task.done() for task in tasks)}
        if health is not None:
            parts |= health()
        return parts

    ops = ops_server(check, host=ops_host, port=ops_port)
    ops_task = asyncio.create_task(ops.serve(), name="ops")
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    for loop in loops:
        loop.stop()
    # In-flight messages get time to finish; what does not finish is redelivered later.
    await asyncio.wait(tasks, timeout=35)
    ops.should_exit = True
    await ops_task
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise RuntimeError("a consumer loop stopped") from task.exception()
