"""Serving one dispatch plan: open the sealed body, call the targets in order with retries,
relay the answer, record one usage event per attempt, and mark the request done.

Idempotency: a plan may be delivered more than once (a worker died before committing it). The
done mark in Redis, set after the outcome and usage are out, makes a redelivered plan a no-op.
A plan redelivered before the mark was set is served again; its attempts get the same event ids
(``request_id:attempt``) as the first time, so metering counts each once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Histogram

from contracts._base import now_ms
from contracts.chat import ChatDelta, ChatRequest, Usage
from contracts.envelope import Mode
from contracts.errors import ErrorCode, ErrorInfo
from contracts.plan import DispatchPlan, Target
from contracts.replies import OutcomeStatus, ReplyChunk, ReplyFinal
from contracts.sealing import SealBroken, unseal
from contracts.topics import USAGE
from contracts.usage import Timings, UsageEvent
from services.common.delivery import OutcomeDelivery
from services.common.replies import ReplySender
from services.common.request_state import RequestStore
from services.workers.calls import CallFailed, CallResult, VendorCall
from services.workers.providers.base import ProviderEndpoint
from services.workers.providers.registry import adapter_for
from services.workers.retry import RetryPolicy

log = logging.getLogger(__name__)

ATTEMPTS = Counter("sy_worker_attempts_total", "Vendor attempts", ["provider", "status", "error"])
VENDOR_SECONDS = Histogram(
    "sy_worker_vendor_seconds",
    "Vendor call duration",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
SKIPPED = Counter("sy_worker_redelivered_skipped_total", "Plans already done, skipped")


# How often a streaming call looks whether its caller went away: often enough to stop paying
# for tokens nobody reads within a second, rarely enough to cost one Redis read per half second.
_CANCEL_CHECK_S = 0.5


class CallerGone(Exception):
    """The streaming caller closed its connection; the vendor call is abandoned."""


@dataclass
class _Progress:
    """What happened so far to one request, across its attempts."""

    attempt: int = 0
    chunks_sent: int = 0
    events: list[UsageEvent] = field(default_factory=list)
    cancel_checked_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, kw_only=True)
class Dispatcher:
    instance_id: str
    session: aiohttp.ClientSession
    endpoints: dict[str, ProviderEndpoint]
    producer: AIOKafkaProducer
    replies: ReplySender
    delivery: OutcomeDelivery
    requests: RequestStore
    retry: RetryPolicy
    connect_timeout_s: float
    read_timeout_s: float

    async def handle(self, plan: DispatchPlan) -> None:
        envelope = plan.envelope
        picked_up_ms = now_ms()
        state = await self.requests.load(plan.request_id)
        if state.done:
            SKIPPED.inc()
            return
        if picked_up_ms > envelope.deadline_ms:
            await self._give_up(plan, ErrorCode.DEADLINE_EXCEEDED, "the request's deadline passed")
            return
        if state.body_key is None:
            await self._give_up(plan, ErrorCode.INTERNAL, "the request body expired unread")
            return
        try:
            raw = unseal(envelope.sealed_body, state.body_key, associated=plan.request_id.encode())
        except SealBroken:
            await self._give_up(plan, ErrorCode.INTERNAL, "the request body could not be opened")
            return
        chat = ChatRequest.model_validate_json(raw)

        progress = _Progress()
        final = await self._serve(plan, chat, progress, picked_up_ms)
        # Order matters: the outcome first (someone is waiting), then usage, then the done mark.
        # A crash between any two redelivers the plan; the done mark is what ends it.
        await self.delivery.deliver(envelope, final, body_key=state.body_key)
        deliveries = [
            await self.producer.send(USAGE.name, event.to_bytes(), key=plan.request_id.encode())
            for event in progress.events
        ]
        await asyncio.gather(*deliveries)
        await self.requests.finish(
            plan.request_id,
            deadline_ms=envelope.deadline_ms,
            keep_body_key=envelope.mode in (Mode.ASYNC, Mode.BATCH),
        )

    async def _serve(
        self, plan: DispatchPlan, chat: ChatRequest, progress: _Progress, picked_up_ms: int
    ) -> ReplyFinal:
        last_error = ErrorInfo(code=ErrorCode.NO_ROUTE, message="no target could be tried")
        last_target: Target | None = None
        for target in plan.targets:
            endpoint = self.endpoints.get(target.provider)
            if endpoint is None:
                last_error = ErrorInfo(
                    code=ErrorCode.NO_ROUTE, message=f"provider {target.provider} is not served"
                )
                continue
            last_target = target
            tries = 0
            while True:
                tries += 1
                attempt_id = f"{self.instance_id}:{progress.attempt}"
                try:
                    result = await self._attempt(plan, target, endpoint, chat, progress, attempt_id)
                except CallerGone:
                    gone = ErrorInfo(code=ErrorCode.CANCELLED, message="the caller went away")
                    self._record(plan, target, endpoint, progress, picked_up_ms, gone, None)
                    return self._final(plan, target, endpoint, attempt_id, error=gone)
                except CallFailed as failed:
                    self._record(plan, target, endpoint, progress, picked_up_ms, failed.info, None)
                    last_error = failed.info
                    # A stream the caller has started reading cannot switch to another answer.
                    if progress.chunks_sent:
                        return self._final(plan, target, endpoint, attempt_id, error=failed.info)
                    delay = self.retry.delay_s(failed.info, tries)
                    if delay is not None and now_ms() + delay * 1000 < plan.envelope.deadline_ms:
                        await asyncio.sleep(delay)
                        continue
                    break
                self._record(plan, target, endpoint, progress, picked_up_ms, None, result)
                return self._final(plan, target, endpoint, attempt_id, result=result)
            if not RetryPolicy.worth_another_target(last_error):
                break
        endpoint = self.endpoints.get(last_target.provider) if last_target else None
        return self._final(
            plan, last_target, endpoint, f"{self.instance_id}:{progress.attempt}", error=last_error
        )

    async def _attempt(
        self,
        plan: DispatchPlan,
        target: Target,
        endpoint: ProviderEndpoint,
        chat: ChatRequest,
        progress: _Progress,
        attempt_id: str,
    ) -> CallResult:
        envelope = plan.envelope
        remaining_s = max((envelope.deadline_ms - now_ms()) / 1000, 0.001)
        call = VendorCall(
            session=self.session,
            adapter=adapter_for(target.provider),
            endpoint=endpoint,
            model=target.model,
            chat=chat,
            timeout=aiohttp.ClientTimeout(
                total=remaining_s,
                connect=min(self.connect_timeout_s, remaining_s),
                sock_read=min(self.read_timeout_s, remaining_s),
            ),
        )
        started = time.monotonic()
        try:
            if envelope.mode is not Mode.STREAM or envelope.reply_to is None:
                return await call.complete()
            reply_to = envelope.reply_to

            async def relay(deltas: list[ChatDelta]) -> None:
                await self._raise_if_caller_gone(plan.request_id, progress)
                chunks = [
                    ReplyChunk(
                        request_id=plan.request_id,
                        attempt_id=attempt_id,
                        seq=progress.chunks_sent + i,
                        delta=delta,
                        provider=target.provider,
                        model=target.canonical_id,
                        simulated=endpoint.simulated,
                    )
                    for i, delta in enumerate(deltas)
                ]
                await self.replies.send_many(reply_to, chunks)
                progress.chunks_sent += len(chunks)

            return await call.stream(relay)
        finally:
            VENDOR_SECONDS.labels(target.provider).observe(time.monotonic() - started)

    async def _raise_if_caller_gone(self, request_id: str, progress: _Progress) -> None:
        now = time.monotonic()
        if now - progress.cancel_checked_at < _CANCEL_CHECK_S:
            return
        progress.cancel_checked_at = now
        if await self.requests.cancelled(request_id):
            raise CallerGone

    def _record(
        self,
        plan: DispatchPlan,
        target: Target,
        endpoint: ProviderEndpoint,
        progress: _Progress,
        picked_up_ms: int,
        error: ErrorInfo | None,
        result: CallResult | None,
    ) -> None:
        envelope = plan.envelope
        finished = now_ms()
        vendor_ms = result.vendor_ms if result else 0
        total_ms = max(finished - envelope.created_at_ms, 0)
        status = OutcomeStatus.OK if error is None else OutcomeStatus.ERROR
        ATTEMPTS.labels(target.provider, status.value, error.code.value if error else "").inc()
        progress.events.append(
            UsageEvent(
                event_id=UsageEvent.make_id(plan.request_id, progress.attempt),
                request_id=plan.request_id,
                attempt=progress.attempt,
                ts_ms=finished,
                tenant=envelope.tenant,
                key_id=envelope.key_id,
                protocol=envelope.client_protocol,
                mode=envelope.mode,
                lane=envelope.lane,
                provider=target.provider,
                model=target.canonical_id,
                requested_model=envelope.requested_model,
                route_reason=plan.reason.value,
                status=status,
                error_class=error.code if error else None,
                usage=result.usage if result else Usage(),
                timings=Timings(
                    queue_ms=max(picked_up_ms - envelope.created_at_ms, 0),
                    ttft_ms=result.ttft_ms if result else None,
                    vendor_ms=vendor_ms,
                    total_ms=total_ms,
                    overhead_ms=max(total_ms - vendor_ms, 0),
                ),
                simulated=endpoint.simulated,
                batch_id=envelope.batch_id,
                tags=envelope.tags,
            )
        )
        progress.attempt += 1

    def _final(
        self,
        plan: DispatchPlan,
        target: Target | None,
        endpoint: ProviderEndpoint | None,
        attempt_id: str,
        *,
        result: CallResult | None = None,
        error: ErrorInfo | None = None,
    ) -> ReplyFinal:
        return ReplyFinal(
            request_id=plan.request_id,
            attempt_id=attempt_id,
            status=OutcomeStatus.OK if error is None else OutcomeStatus.ERROR,
            response=result.response if result else None,
            error=error,
            provider=target.provider if target else None,
            model=target.canonical_id if target else None,
            simulated=endpoint.simulated if endpoint else False,
        )

    async def fail(self, plan: DispatchPlan) -> None:
        """End a request that hit an unexpected error, so its caller is not left waiting."""
        try:
            await self._give_up(plan, ErrorCode.INTERNAL, "the request failed inside Switchyard")
        except Exception:
            log.exception("could not report the failure of %s", plan.request_id)

    async def _give_up(self, plan: DispatchPlan, code: ErrorCode, message: str) -> None:
        await self.delivery.deliver_error(plan.envelope, ErrorInfo(code=code, message=message))
        await self.requests.finish(plan.request_id, deadline_ms=plan.envelope.deadline_ms)


def new_instance_id() -> str:
    return uuid.uuid4().hex[:12]
