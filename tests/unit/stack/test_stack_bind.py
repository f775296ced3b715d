"""Every listener of the stack binds loopback unless its ``SWITCHYARD_<SERVICE>_HOST`` says
otherwise: usage, health and metrics are not for the network by default."""

from __future__ import annotations

import asyncio
import socket
from typing import cast

import pytest
from typer.testing import CliRunner

from services.cli import app as cli_app
from services.common.consumer import ConcurrentConsumer
from services.common.runtime import run_consumers
from services.ingress.settings import IngressSettings
from services.metering.settings import MeteringSettings
from services.router.settings import RouterSettings
from services.workers.settings import WorkerSettings

_HOST_VARIABLES = (
    "SWITCHYARD_INGRESS_HOST",
    "SWITCHYARD_ROUTER_HOST",
    "SWITCHYARD_WORKER_HOST",
    "SWITCHYARD_METERING_HOST",
    "SWITCHYARD_VENDORSIM_HOST",
)


@pytest.fixture
def no_host_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _HOST_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_every_service_binds_loopback_by_default(no_host_variables: pytest.MonkeyPatch) -> None:
    assert IngressSettings().ingress_host == "127.0.0.1"
    assert RouterSettings().router_host == "127.0.0.1"
    assert WorkerSettings().worker_host == "127.0.0.1"
    assert MeteringSettings().metering_host == "127.0.0.1"


def test_each_host_is_its_own_setting(no_host_variables: pytest.MonkeyPatch) -> None:
    no_host_variables.setenv("SWITCHYARD_ROUTER_HOST", "10.1.2.3")
    no_host_variables.setenv("SWITCHYARD_WORKER_HOST", "10.1.2.4")
    no_host_variables.setenv("SWITCHYARD_METERING_HOST", "0.0.0.0")
    assert RouterSettings().router_host == "10.1.2.3"
    assert WorkerSettings().worker_host == "10.1.2.4"
    assert MeteringSettings().metering_host == "0.0.0.0"
    assert IngressSettings().ingress_host == "127.0.0.1"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({}, "127.0.0.1"), ({"SWITCHYARD_VENDORSIM_HOST": "127.0.0.5"}, "127.0.0.5")],
)
def test_vendorsim_host(
    no_host_variables: pytest.MonkeyPatch, environ: dict[str, str], expected: str
) -> None:
    seen: dict[str, object] = {}

    def fake_serve(host: str, port: int) -> None:
        seen.update(host=host, port=port)

    no_host_variables.setattr("services.vendorsim.server.serve", fake_serve)
    result = CliRunner().invoke(cli_app, ["vendorsim", "--port", "1"], env=environ)
    assert result.exit_code == 0, result.output
    assert seen == {"host": expected, "port": 1}


# ---- the ops endpoint of the headless services (router, workers), on a real socket ----------


class _IdleLoop:
    """Stands in for a consumer loop: runs until stopped."""

    def __init__(self) -> None:
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        await self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _accepts(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def _listening_addresses(port: int, ops_host: str | None = None) -> tuple[bool, bool]:
    """Whether the ops endpoint run with ``ops_host`` (None: the default) accepts on 127.0.0.1
    and on 127.0.0.2 (both loopback on Linux: no network needed, yet one bind is told from
    another)."""
    stop = asyncio.Event()
    loop = _IdleLoop()
    loops = [cast(ConcurrentConsumer, loop)]
    running = asyncio.create_task(
        run_consumers(stop, loops, ops_port=port)
        if ops_host is None
        else run_consumers(stop, loops, ops_port=port, ops_host=ops_host)
    )
    try:
        for _ in range(200):
            if await _accepts(ops_host or "127.0.0.1", port):
                break
            await asyncio.sleep(0.01)
        return await _accepts("127.0.0.1", port), await _accepts("127.0.0.2", port)
    finally:
        stop.set()
        await running


async def test_ops_endpoint_binds_loopback_only_by_default() -> None:
    assert await _listening_addresses(_free_port()) == (True, False)


async def test_ops_endpoint_binds_the_given_host() -> None:
    assert await _listening_addresses(_free_port(), ops_host="127.0.0.2") == (False, True)
