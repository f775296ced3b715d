"""Health probes. A probe answers None when the component serves, or a short reason why not;
it never raises, so the supervisor's wait loop can show the last reason when it gives up.

The probes are synchronous: the supervisor is a plain program, and tests call it from both sync
fixtures and async tests. The Kafka probe needs asyncio (aiokafka), so it runs its own event loop
in a short-lived thread, which works whether or not the caller already runs a loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import redis
from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError

Probe = Callable[[], str | None]


def tcp_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def kafka_probe(port: int) -> Probe:
    bootstrap = f"127.0.0.1:{port}"

    async def metadata() -> str | None:
        client = AIOKafkaClient(
            bootstrap_servers=bootstrap, client_id="sy-stack-probe", request_timeout_ms=3_000
        )
        try:
            # bootstrap() is a metadata request: it succeeds once the broker serves clients.
            await client.bootstrap()
            if not client.cluster.brokers():
                return "metadata lists no broker yet"
            return None
        finally:
            await client.close()

    def probe() -> str | None:
        # The listener opens only when the broker is ready; checking it first keeps a starting
        # broker's probe cheap and quiet (aiokafka logs every refused bootstrap).
        if not tcp_open(port):
            return f"port {port} not open"
        try:
            return _run_in_own_loop(metadata())
        except (KafkaError, OSError, TimeoutError) as exc:
            return f"metadata request failed: {exc!r}"

    return probe


def redis_probe(url: str) -> Probe:
    def probe() -> str | None:
        client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            return None if client.ping() else "PING not answered"
        except redis.RedisError as exc:
            return f"PING failed: {exc}"
        finally:
            client.close()

    return probe


def http_probe(port: int, path: str = "/healthz") -> Probe:
    url = f"http://127.0.0.1:{port}{path}"

    def probe() -> str | None:
        try:
            # trust_env=False: a developer's HTTP(S)_PROXY must not capture loopback probes.
            response = httpx.get(url, timeout=1.0, trust_env=False)
        except httpx.HTTPError as exc:
            return f"GET {url}: {exc!r}"
        return None if response.status_code == 200 else f"GET {url}: {response.status_code}"

    return probe


def _run_in_own_loop(coro: Coroutine[Any, Any, str | None]) -> str | None:
    outcome: list[str | None] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=target, name="stack-probe", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]
