"""What the failover tests share: the simulator's per-model call counts and call times."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from services.stack import RunningStack


def _sim(full_stack: RunningStack) -> str:
    return f"http://127.0.0.1:{full_stack.layout.vendorsim_port}"


def sim_calls_by_model(full_stack: RunningStack) -> dict[str, int]:
    """Chat calls the simulator received so far, by the vendor model id they named."""
    response = httpx.get(f"{_sim(full_stack)}/_sim/stats", timeout=10.0, trust_env=False)
    response.raise_for_status()
    counts: dict[str, int] = response.json()["by_model"]
    return counts


def sim_call_times_ms(full_stack: RunningStack, model: str) -> list[int]:
    """When each call to ``model`` arrived (epoch ms), oldest first."""
    response = httpx.get(
        f"{_sim(full_stack)}/_sim/calls", params={"model": model}, timeout=10.0, trust_env=False
    )
    response.raise_for_status()
    times: list[int] = response.json()["calls_ms"]
    return times


def sim_outage(full_stack: RunningStack, **outage: object) -> None:
    response = httpx.post(
        f"{_sim(full_stack)}/_sim/outage", json=outage, timeout=10.0, trust_env=False
    )
    response.raise_for_status()


def end_sim_outages(full_stack: RunningStack) -> None:
    httpx.delete(
        f"{_sim(full_stack)}/_sim/outage", timeout=10.0, trust_env=False
    ).raise_for_status()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def extra_worker(
    full_stack: RunningStack, provider: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """One more worker process for ``provider``, beside the stack's own: a second replica of its
    pool, or (with ``env``) one whose vendor sits somewhere else. Stopped at the end."""
    port = free_port()
    child_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")},
        **full_stack.env,
        "SWITCHYARD_WORKER_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    log = full_stack.layout.log_file(f"extra-worker-{provider}-{port}")
    with log.open("ab") as out:
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from services.cli import main; main()",
                "worker",
                "--provider",
                provider,
            ],
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=full_stack.layout.repo_root,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert child.poll() is None, f"the extra worker exited; see {log}"
            try:
                if httpx.get(
                    f"http://127.0.0.1:{port}/healthz", timeout=1.0, trust_env=False
                ).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the extra worker never became healthy; see {log}"
            time.sleep(0.2)
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
