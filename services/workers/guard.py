"""What stands between a worker and a vendor call: the model's circuit breaker, the provider
account's shared capacity, and the health statistics every replica adds to.

``Guard`` is what ``Dispatcher`` asks: ``admit`` before each vendor attempt (a ``Pass``, or a
``Held`` saying how long to wait and why), ``settle`` after it, before any backoff sleep, so a
retry never waits while holding a slot. ``UnguardedProviders`` admits everything: for tests of
the dispatcher's own logic and for a worker without Redis-backed limits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Literal, Protocol

from contracts.chat import Usage
from contracts.errors import ErrorCode, ErrorInfo
from contracts.plan import Target
from contracts.topics import Lane
from services.common.capacity import Capacity, Grant, Release, Wait
from services.common.circuits import Circuits, CircuitSnapshot, CircuitState, provider_circuit
from services.common.periodic import Periodic
from services.common.provider_stats import AttemptStats
from services.common.redis_client import REDIS_DOWN
from services.workers.retry import unhealthy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pass:
    """Leave to call. ``token`` is the guard's own record of what it granted."""

    token: object = None
    probe: bool = False


@dataclass(frozen=True)
class Held:
    """Not now: wait ``wait_s`` and ask again, or move on to the next target."""

    wait_s: float
    info: ErrorInfo  # what the request ends with if it cannot wait
    circuit_open: bool = False


class Guard(Protocol):
    async def admit(
        self, target: Target, *, lane: Lane, tokens: int, lease_s: float
    ) -> Pass | Held: ...

    async def settle(
        self, target: Target, granted: Pass, *, error: ErrorInfo | None, usage: Usage | None
    ) -> None: ...


class UnguardedProviders:
    async def admit(self, target: Target, *, lane: Lane, tokens: int, lease_s: float) -> Pass:
        return Pass()

    async def settle(
        self, target: Target, granted: Pass, *, error: ErrorInfo | None, usage: Usage | None
    ) -> None:
        return None


# Attempts Switchyard ended itself: they say nothing about the vendor's health.
_OURS = frozenset(
    {
        ErrorCode.CANCELLED,
        ErrorCode.UNAVAILABLE,
        ErrorCode.DEADLINE_EXCEEDED,
        ErrorCode.INTERNAL,
    }
)


@dataclass(frozen=True)
class _Granted:
    grant: Grant | None  # None: Redis was away, the call went ahead unmetered
    probe: bool
    circuit: CircuitState  # as this replica saw it when admitting
    started: float


class SharedGuard:
    """The guard every worker replica shares through Redis.

    Admission: an open circuit (this process's snapshot of the shared state, refreshed twice a
    second) holds the call without a Redis round trip; otherwise one Lua call takes a capacity
    slot (pause, concurrency, rpm, tpm), and only a circuit that is not closed costs a second one
    (a probe slot). When Redis does not answer, calls go ahead unmetered: the vendor's own limits
    still stand behind ours, and refusing every request would be worse.
    """

    def __init__(
        self,
        *,
        circuits: Circuits,
        snapshot: CircuitSnapshot,
        capacity: Capacity,
        stats: AttemptStats,
    ) -> None:
        self._circuits = circuits
        self._snapshot = snapshot
        self._capacity = capacity
        self._stats = stats
        # Grants of calls in flight here, renewed together: a slot's lease is short, so the
        # slots of a worker that died free themselves within LEASE_S.
        self._held: dict[str, Grant] = {}
        self._renewal = Periodic("capacity-leases", LEASE_RENEW_S, self._renew)
        # Releases that need not act at once (no pause, no cut) go out together: one round
        # trip for all the calls that ended within RELEASE_BATCH_S, and none on a reply's path.
        self._releases: list[Release] = []
        self._releasing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._renewal.start()

    async def stop(self) -> None:
        await self._renewal.stop()
        if self._releasing is not None:
            await self._releasing

    async def _renew(self) -> None:
        if self._held:
            try:
                await self._capacity.renew(list(self._held.values()), lease_s=LEASE_S)
            except REDIS_DOWN:
                log.warning("could not renew %d capacity leases (Redis down)", len(self._held))

    async def admit(
        self, target: Target, *, lane: Lane, tokens: int, lease_s: float
    ) -> Pass | Held:
        key = target.canonical_id
        for circuit in (key, provider_circuit(target.provider)):
            retry_at = self._snapshot.blocked(circuit)
            if retry_at is not None:
                return _circuit_open(target, retry_at)
        try:
            got = await self._capacity.acquire(
                target.provider, lane=lane, tokens=tokens, lease_s=min(lease_s, LEASE_S)
            )
        except REDIS_DOWN:
            log.warning("capacity unknown (Redis down): calling %s unmetered", target.provider)
            got = None
        if isinstance(got, Wait):
            return _at_capacity(target, got)
        state = self._snapshot.state(key)
        probe = False
        if state is not CircuitState.CLOSED:
            try:
                admission = await self._circuits.admit(key)
            except REDIS_DOWN:
                admission = None
            if admission is not None and not admission.allowed:
                if got is not None:
                    self._release_soon(Release(got, "error", actual_tokens=0))
                return _circuit_open(target, admission.retry_at_ms)
            probe = admission is not None and admission.probe
        if got is not None:
            self._held[got.lease_id] = got
        return Pass(token=_Granted(got, probe, state, time.monotonic()), probe=probe)

    async def settle(
        self, target: Target, granted: Pass, *, error: ErrorInfo | None, usage: Usage | None
    ) -> None:
        token = granted.token
        assert isinstance(token, _Granted)
        latency_ms = int((time.monotonic() - token.started) * 1000)
        rate_limited = (
            error is not None and error.code is ErrorCode.VENDOR_RATE_LIMITED and error.retryable
        )
        outcome: Literal["ok", "rate_limited", "error"] = (
            "ok" if error is None else "rate_limited" if rate_limited else "error"
        )
        if token.grant is not None:
            self._held.pop(token.grant.lease_id, None)
            # A failed call that reported nothing used no tokens: its reservation is returned,
            # or fast retries during an outage would use up the minute's budget.
            actual = usage.total_tokens if usage is not None else (0 if error else None)
            pause = None
            if rate_limited and error is not None and error.retry_after_s is not None:
                pause = min(error.retry_after_s, MAX_PAUSE_S)
            release = Release(token.grant, outcome, actual, pause)
            if rate_limited:
                await self._release([release])  # everyone must slow down now
            else:
                self._release_soon(release)
        if error is not None and error.code in _OURS:
            if token.probe:  # free the probe slot now rather than at the end of its lease
                await self._record(target.canonical_id, ok=True, probe=True)
            return
        failed = error is not None and unhealthy(error)
        self._stats.note(target.canonical_id, ok=not failed, latency_ms=latency_ms)
        if failed:
            await self._record(target.canonical_id, ok=False, probe=token.probe)
        elif token.probe or token.circuit is not CircuitState.CLOSED:
            await self._record(target.canonical_id, ok=True, probe=token.probe)

    def _release_soon(self, release: Release) -> None:
        self._releases.append(release)
        if self._releasing is None:
            self._releasing = asyncio.create_task(self._release_batch(), name="capacity-release")

    async def _release_batch(self) -> None:
        await asyncio.sleep(RELEASE_BATCH_S)
        batch, self._releases, self._releasing = self._releases, [], None
        await self._release(batch)

    async def _release(self, releases: list[Release]) -> None:
        try:
            await self._capacity.release_many(releases)
        except REDIS_DOWN:
            # The slots free themselves when their leases end (no longer renewed).
            log.warning("could not release %d capacity slots (Redis down)", len(releases))

    async def _record(self, key: str, *, ok: bool, probe: bool) -> None:
        try:
            state = await self._circuits.record(key, ok=ok, probe=probe)
        except REDIS_DOWN:
            log.warning("could not record the health of %s (Redis down)", key)
            return
        if not ok and state is CircuitState.OPEN:
            log.warning("circuit of %s is open", key)


def _circuit_open(target: Target, retry_at_ms: int | None) -> Held:
    wait_s = max((retry_at_ms or 0) - time.time() * 1000, 0) / 1000
    return Held(
        wait_s=wait_s,
        info=ErrorInfo(
            code=ErrorCode.VENDOR_UNREACHABLE,
            message=f"{target.canonical_id} is failing; Switchyard stopped sending it requests.",
            retryable=True,
            retry_after_s=max(round(wait_s, 1), 1.0),
        ),
        circuit_open=True,
    )


LEASE_S = 30.0
LEASE_RENEW_S = 10.0
RELEASE_BATCH_S = 0.01
# The longest a vendor's retry-after pauses a whole provider account: a misbehaving header
# must not stop a provider for an hour.
MAX_PAUSE_S = 60.0

_WAIT_WORDS = {
    "paused": "was asked by the vendor to pause",
    "concurrency": "is at its concurrency limit",
    "rpm": "is at its requests-per-minute limit",
    "tpm": "is at its tokens-per-minute limit",
}


def _at_capacity(target: Target, wait: Wait) -> Held:
    return Held(
        wait_s=wait.wait_s,
        info=ErrorInfo(
            code=ErrorCode.VENDOR_RATE_LIMITED,
            message=f"Provider {target.provider} {_WAIT_WORDS[wait.reason]}; try again shortly.",
            retryable=True,
            retry_after_s=max(round(wait.wait_s, 1), 1.0),
        ),
    )
