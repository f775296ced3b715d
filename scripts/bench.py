"""``make bench``: the gateway's added latency and its throughput, measured on the local stack.

1. Added latency at a steady request rate: the same chat request sent at a fixed rate (open loop,
   so a slow answer does not slow the sender) to the vendor simulator directly and through the
   gateway; the difference of the percentiles is what Switchyard adds. Sync and streaming (for
   streams: time to first token and time to the last byte).
2. Throughput: N concurrent clients in a closed loop against a vendor that answers instantly;
   requests/s and errors. ``wrk`` drives it when installed (its C client leaves the two cores to
   the gateway); otherwise an asyncio client does.
3. Fallback: the added latency of a request whose primary model's vendor refuses connections
   and that its fallback answers, beside the same request sent straight to the fallback. The
   failing vendor is made by a worker the bench starts for the shared pool's providers, with
   one provider's base URL pointed at a closed port; its circuit never opens in this phase
   (so every request pays the failed attempt, the worst case), and the stack's own worker is
   back when the bench ends.
4. Memory: the resident set of every process of the stack.

Everything talks to 127.0.0.1 only, and every phase stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from services.stack import Stack, StackLayout
from services.stack._components import worker_groups

MODEL = "openai/gpt-4o-mini"
PROMPT = "Summarise the plot of Hamlet in one sentence."


@dataclass(frozen=True)
class Sample:
    ok: bool
    total_ms: float
    ttft_ms: float | None = None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def body(model: str, *, stream: bool) -> dict[str, object]:
    payload: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    return payload


async def one_call(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], payload: dict[str, object]
) -> Sample:
    started = time.perf_counter()
    try:
        if not payload.get("stream"):
            response = await client.post(url, json=payload, headers=headers)
            return Sample(response.status_code == 200, (time.perf_counter() - started) * 1000)
        ttft: float | None = None
        async with client.stream("POST", url, json=payload, headers=headers) as response:
            async for line in response.aiter_lines():
                if ttft is None and '"content"' in line:
                    ttft = (time.perf_counter() - started) * 1000
            ok = response.status_code == 200
        return Sample(ok, (time.perf_counter() - started) * 1000, ttft)
    except httpx.HTTPError:
        return Sample(False, (time.perf_counter() - started) * 1000)


async def steady(
    url: str, headers: dict[str, str], payload: dict[str, object], *, rate: float, seconds: float
) -> list[Sample]:
    """Open loop: request i leaves at t0 + i/rate, whatever happened to the others."""
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as client:
        start = time.perf_counter()
        tasks = []
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one_call(client, url, headers, payload)))
        return list(await asyncio.gather(*tasks))


async def closed_loop(
    url: str, headers: dict[str, str], payload: dict[str, object], *, clients: int, seconds: float
) -> tuple[int, int, float]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        stop_at = time.perf_counter() + seconds
        ok = errors = 0

        async def loop() -> None:
            nonlocal ok, errors
            while time.perf_counter() < stop_at:
                sample = await one_call(client, url, headers, payload)
                ok, errors = (ok + 1, errors) if sample.ok else (ok, errors + 1)

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        return ok, errors, time.perf_counter() - started


def wrk_throughput(
    url: str, headers: dict[str, str], payload: dict[str, object], *, clients: int, seconds: int
) -> tuple[int, int, float, str]:
    lua = "wrk.method = 'POST'\n" + f"wrk.body = {json.dumps(json.dumps(payload))}\n"
    for name, value in {**headers, "Content-Type": "application/json"}.items():
        lua += f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", "-s", script.name, url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    Path(script.name).unlink()
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return total - errors, errors, rps, out


def describe(samples: list[Sample], attr: str) -> dict[str, float]:
    values = [getattr(s, attr) for s in samples if s.ok and getattr(s, attr) is not None]
    return {f"p{q}": percentile(values, q) for q in (50, 95, 99)}


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def tree_rss_mib(pid: int) -> float:
    """A process and its children (uvicorn workers, the JVM's helpers)."""
    total = rss_mib(pid) or 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            total += tree_rss_mib(int(child))
    return total


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--steady-seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--throughput-seconds", type=int, default=20)
    parser.add_argument("--warmup-seconds", type=float, default=10.0)
    args = parser.parse_args()

    layout = StackLayout.from_env()
    stack = Stack(layout)
    gateway = f"http://127.0.0.1:{layout.ingress_port}/v1/chat/completions"
    sim_root = f"http://127.0.0.1:{layout.vendorsim_port}"
    direct = f"{sim_root}/v1/chat/completions"
    auth = {"Authorization": f"Bearer {stack.admin_key()}"}
    async with httpx.AsyncClient() as client:
        # An instant vendor: what is measured is the gateway, not the simulated model.
        reset = await client.post(f"{sim_root}/_sim/config", json={"ttft_ms": 0, "itl_ms": 0})
        reset.raise_for_status()

    # A freshly started stack runs cold (Kafka's JIT, connection pools, chDB's first merges):
    # ten seconds of real load first, so the figures describe the stack, not its start-up.
    print(f"warming up ({args.warmup_seconds:g} s of load) ...", flush=True)
    await closed_loop(
        gateway, auth, body(MODEL, stream=False), clients=50, seconds=args.warmup_seconds
    )

    print(
        f"\n== added latency at a steady {args.rate:g} requests/s, {args.steady_seconds:g} s each"
    )
    header = f"{'':34}{'p50':>9}{'p95':>9}{'p99':>9}   ok/sent"
    print(header)
    for stream in (False, True):
        payload = body(MODEL, stream=stream)
        direct_samples = await steady(
            direct, auth, payload, rate=args.rate, seconds=args.steady_seconds
        )
        via_samples = await steady(
            gateway, auth, payload, rate=args.rate, seconds=args.steady_seconds
        )
        kind = "stream" if stream else "sync"
        attrs = ["total_ms", "ttft_ms"] if stream else ["total_ms"]
        for attr in attrs:
            label = f"{kind} {'time to first token' if attr == 'ttft_ms' else 'total'}"
            d = describe(direct_samples, attr)
            g = describe(via_samples, attr)
            for name, row, samples in (
                ("vendor direct", d, direct_samples),
                ("via switchyard", g, via_samples),
            ):
                ok = sum(s.ok for s in samples)
                print(
                    f"{label + ', ' + name:34}"
                    + "".join(f"{row[p]:9.2f}" for p in ("p50", "p95", "p99"))
                    + f"   {ok}/{len(samples)}"
                )
            print(
                f"{label + ', ADDED (ms)':34}"
                + "".join(f"{g[p] - d[p]:9.2f}" for p in ("p50", "p95", "p99"))
            )

    print(f"\n== throughput: {args.clients} concurrent clients, instant vendor, sync requests")
    payload = body(MODEL, stream=False)
    if shutil.which("wrk"):
        ok, errors, rps, raw = wrk_throughput(
            gateway, auth, payload, clients=args.clients, seconds=args.throughput_seconds
        )
        print(f"driver: wrk, {args.throughput_seconds} s")
        latency = re.search(r"Latency Distribution\n((?:.*\n){4})", raw)
        if latency:
            print("latency distribution (wrk):\n" + latency.group(1).rstrip())
    else:
        ok, errors, seconds = await closed_loop(
            gateway, auth, payload, clients=args.clients, seconds=args.throughput_seconds
        )
        rps = (ok + errors) / seconds
        print(f"driver: python asyncio client (install wrk for a lighter one), {seconds:.1f} s")
    print(f"requests/s: {rps:.0f}   ok: {ok}   errors: {errors}")

    await fallback_phase(stack, layout, gateway, auth, rate=args.rate, seconds=args.steady_seconds)

    print("\n== memory (resident set, MiB)")
    for status in stack.status():
        if status.pid is not None:
            print(f"{status.name:18}{tree_rss_mib(status.pid):9.1f}")


# The primary whose vendor is down, and the fallback that answers.
DOWN_PROVIDER = "mistral"
DOWN_MODEL = "mistral/mistral-small-latest"


async def fallback_phase(
    stack: Stack,
    layout: StackLayout,
    gateway: str,
    auth: dict[str, str],
    *,
    rate: float,
    seconds: float,
) -> None:
    print(
        f"\n== fallback: primary {DOWN_MODEL} refuses connections, {MODEL} answers; "
        f"{rate:g} requests/s, {seconds:g} s each"
    )
    print(f"{'':34}{'p50':>9}{'p95':>9}{'p99':>9}   ok/sent")
    plain = body(MODEL, stream=False)
    with_fallback = {**plain, "model": DOWN_MODEL, "models": [DOWN_MODEL, MODEL]}
    with _pool_with_a_dead_vendor(stack, layout):
        rows = {}
        for label, payload in (
            ("straight to the fallback", plain),
            ("primary down", with_fallback),
        ):
            samples = await steady(gateway, auth, payload, rate=rate, seconds=seconds)
            rows[label] = describe(samples, "total_ms")
            ok = sum(sample.ok for sample in samples)
            print(
                f"{label:34}"
                + "".join(f"{rows[label][p]:9.2f}" for p in ("p50", "p95", "p99"))
                + f"   {ok}/{len(samples)}"
            )
    added = {
        p: rows["primary down"][p] - rows["straight to the fallback"][p]
        for p in rows["primary down"]
    }
    print(
        f"{'fallback ADDED (ms)':34}" + "".join(f"{added[p]:9.2f}" for p in ("p50", "p95", "p99"))
    )


@contextlib.contextmanager
def _pool_with_a_dead_vendor(stack: Stack, layout: StackLayout) -> Iterator[None]:
    """The shared worker pool, replaced for a while by one whose DOWN_PROVIDER vendor sits at
    a closed port, with that provider's circuit unable to open."""
    [(name, providers)] = [(n, p) for n, p in worker_groups() if DOWN_PROVIDER in p]
    closed_port, ops_port = _free_port(), _free_port()
    config = yaml.safe_load(layout.routing_config_file.read_text()) or {}
    config.setdefault("providers", {}).setdefault(DOWN_PROVIDER, {})["circuit"] = {
        "failures": 1_000_000_000
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as routing:
        yaml.safe_dump(config, routing)
    env = {
        **os.environ,
        **layout.service_env(admin_key=stack.admin_key()),
        "SWITCHYARD_WORKER_PORT": str(ops_port),
        "SWITCHYARD_ROUTING_CONFIG": routing.name,
        f"{DOWN_PROVIDER.upper()}_BASE_URL": f"http://127.0.0.1:{closed_port}/v1",
    }
    stack.down([name])
    argv = [sys.executable, "-c", "from services.cli import main; main()", "worker"]
    argv += [arg for provider in providers for arg in ("--provider", provider)]
    worker = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _healthy(ops_port):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the bench's worker did not start")
            time.sleep(0.2)
        time.sleep(3)  # its consumer groups settle (the stack's worker just left them)
        yield
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        Path(routing.name).unlink(missing_ok=True)
        stack.up([name])


def _free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).is_success
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    asyncio.run(main())
