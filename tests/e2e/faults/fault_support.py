"""What the fault tests share: a caller that records how each request ended, the simulator's
call counter, and putting a killed part of the stack back.

A fault test kills a real part of the session's stack (Redis, Kafka) while requests are in flight,
brings it back, and then counts: every caller answered or cleanly refused before its deadline,
exactly one charged usage row per vendor answer. It leaves the stack healthy for the tests after
it, whatever happened (``restored``).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from services.stack import RunningStack

# Every request of a fault test carries its own deadline: the caller's promise is "an answer or
# a clean error before it", and a test must not wait out the production default.
DEADLINE_S = 40.0
# Only to end a test that hangs: the assertions use the deadline above.
CLIENT_TIMEOUT_S = DEADLINE_S + 30.0


@dataclass(frozen=True)
class Outcome:
    """How one request ended, as its caller saw it."""

    status: int
    body: Any
    request_id: str | None
    elapsed_s: float
    retry_after: str | None

    @property
    def answered(self) -> bool:
        return self.status == 200

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            code = self.body["error"].get("code")
            return code if isinstance(code, str) else None
        return None

    @property
    def cleanly_refused(self) -> bool:
        """An error in OpenAI's shape with a status that says whose fault it is."""
        return self.status in (429, 502, 503, 504) and self.error_code is not None


def chat_body(prompt: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": prompt}],
        **extra,
    }


async def post_chat(
    http: httpx.AsyncClient, body: dict[str, Any], *, deadline_s: float = DEADLINE_S
) -> Outcome:
    started = time.monotonic()
    response = await http.post(
        "/v1/chat/completions",
        json=body,
        headers={"x-switchyard-timeout": str(deadline_s)},
    )
    try:
        parsed: Any = response.json()
    except ValueError:
        parsed = response.text
    return Outcome(
        status=response.status_code,
        body=parsed,
        request_id=response.headers.get("x-request-id"),
        elapsed_s=time.monotonic() - started,
        retry_after=response.headers.get("retry-after"),
    )


def ingress_client(full_stack: RunningStack) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{full_stack.layout.ingress_port}",
        headers={"authorization": f"Bearer {full_stack.admin_key}"},
        timeout=CLIENT_TIMEOUT_S,
        trust_env=False,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
    )


async def vendor_calls(full_stack: RunningStack) -> int:
    """Calls the vendor simulator has received so far."""
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
        response = await http.get(f"http://127.0.0.1:{full_stack.layout.vendorsim_port}/_sim/stats")
        response.raise_for_status()
        calls: int = response.json()["requests"]
        return calls


async def kill(full_stack: RunningStack, name: str) -> None:
    await asyncio.to_thread(full_stack.stack.kill, name, signal.SIGKILL)
    assert not full_stack.stack.is_running(name)


async def restart(full_stack: RunningStack, name: str) -> None:
    await asyncio.to_thread(full_stack.stack.restart, name)


@contextmanager
def restored(full_stack: RunningStack) -> Iterator[None]:
    """Whatever the test did, every part of the stack runs and is healthy afterwards."""
    try:
        yield
    finally:
        full_stack.stack.up()


def count_by(outcomes: list[Outcome]) -> dict[str, int]:
    """``{"200": 57, "503 unavailable": 3}``: the table a fault test prints and asserts on."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        key = str(outcome.status) if outcome.answered else f"{outcome.status} {outcome.error_code}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
