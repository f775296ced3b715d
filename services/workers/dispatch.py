"""Serving one dispatch plan: open the sealed body, call the targets in order with retries,
relay the answer, record one usage event per attempt, and mark the request done.

Idempotency: a plan may be delivered more than once (a worker died before committing it). The
done mark in Redis, set after the outcome and usage are out, makes a redelivered plan a no-op.
A plan redelivered before the mark was set is served again; its attempts get the same event ids
(``request_id:attempt``) as the first time, so metering counts each once.

Money: every attempt is one usage event, sent to Kafka before anything that needs Redis, so a
vendor call that happened is metered even when Redis is down. An attempt is charged for what
the vendor produced: its own usage figures when it sent them, else the produced text counted
with a tokenizer (``usage_estimated``); an attempt that produced nothing costs nothing.

Redis down: reads and writes the request cannot do without (its body key, its outcome, its done
mark) are retried until the request's deadline, since the caller waits that long and Redis
usually comes back in seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata
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
from services.common.deadlines import DeadlinePassed
from services.common.delivery import OutcomeDelivery
from services.common.redis_client import REDIS_DOWN, until_redis_answers
from services.common.replies import ReplySender
from services.common.request_state import RequestStore
from services.workers.calls import CallFailed, CallResult, StreamTally, VendorCall
from services.workers.estimate import estimate_usage
from services.workers.providers.base import ProviderEndpoint
from services.workers.providers.registry import adapter_for
from services.workers.retry import RetryPolicy
from services.workers.timeouts import VendorTimeouts

log = logging.getLogger(__name__)

ATTEMPTS = Counter("sy_worker_attempts_total", "Vendor attempts", ["provider", "status", "error"])
VENDOR_SECONDS = Histogram(
    "sy_worker_vendor_seconds",
    "Vendor call duration",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
SKIPPED = Counter("sy_worker_redelivered_skipped_total", "Plans already done, skipped")


# A usage event that Kafka refused is sent again this often, for up to this long (a broker
# restart takes seconds; an outage longer than this is an incident, and the log says so).
_USAGE_RETRY_S = 1.0
_USAGE_PATIENCE_S = 900.0

# How often a streaming call looks whether its caller went away: often enough to stop paying
# for tokens nobody reads within a second, rarely enough to cost one Redis read per half second.
_CANCEL_CHECK_S = 0.5


class _AttemptStopped(Exception):
    """A streaming attempt ended by Switchyard, not by the vendor: never retried, since its
    caller cannot take another answer. ``info`` is what the caller and the usage row are told."""

    info: ErrorInfo


class CallerGone(_AttemptStopped):
    """The streaming caller closed its connection; the vendor call is abandoned."""

    info = ErrorInfo(code=ErrorCode.CANCELLED, message="the caller went away")


class ReplyPathLost(_AttemptStopped):
    """Redis refused a piece of a stream: the caller cannot get the rest of this answer."""

    info = ErrorInfo(
        code=ErrorCode.UNAVAILABLE,
        message="The answer's stream was interrupted inside Switchyard; try again.",
        retryable=True,
    )


@dataclass(frozen=True)
class _Charge:
    """What one attempt is charged for."""

    usage: Usage
    estimated: bool = False

    @staticmethod
    async def of_failure(chat: ChatRequest, tally: StreamTally) -> _Charge:
        reported = tally.usage or Usage()
        if reported.output_tokens or not tally.produced:
            return _Charge(reported)  # the vendor's own figures, or nothing produced at all
        # The vendor produced output and never said what it cost. Some say what the prompt
        # cost at the start (Anthropic's message_start): keep that, count the rest.
        # In a thread: the first count loads the tokenizer (about a second, and ~110 MiB that a
        # worker only pays once a stream is cut), and a long prompt takes a while to count.
        estimate = await asyncio.to_thread(estimate_usage, chat, tally.text)
        usage = reported.model_copy(
            update={
                "input_tokens": reported.input_tokens or estimate.input_tokens,
                "output_tokens": estimate.output_tokens,
            }
        )
        return _Charge(usage, estimated=True)


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
    # Per provider; a provider missing here gets the defaults.
    timeouts: Mapping[str, VendorTimeouts] = field(default_factory=dict)

    async def handle(self, plan: DispatchPlan) -> None:
        envelope = plan.envelope
        picked_up_ms = now_ms()
        try:
            state = await until_redis_answers(
                lambda: self.requests.load(plan.request_id), deadline_ms=envelope.deadline_ms
            )
        except DeadlinePassed:
            # Nothing was called, so nothing is charged; the caller has had its 504 by now.
            log.warning("gave up on %s: Redis was down until its deadline", plan.request_id)
            return
        if state.done:
            SKIPPED.inc()
            return
        if picked_up_ms > envelope.deadline_ms:
            await self._give_up(plan, ErrorCode.DEADLINE_EXCEEDED, "the request's deadline passed")
            return
        if state.body_key is None:
            # Its key is gone: Redis restarted (it keeps nothing on disk, on purpose), or the
            # request was withdrawn because it could not be published in time.
            await self._give_up(
                plan,
                ErrorCode.UNAVAILABLE,
                "Switchyard lost this request's state before a worker reached it; try again.",
                retryable=True,
            )
            return
        try:
            raw = unseal(envelope.sealed_body, state.body_key, associated=plan.request_id.encode())
        except SealBroken:
            await self._give_up(plan, ErrorCode.INTERNAL, "the request body could not be opened")
            return
        chat = ChatRequest.model_validate_json(raw)

        progress = _Progress()
        final = await self._serve(plan, chat, progress, picked_up_ms)
        # Usage first, before anything that needs Redis: a vendor call that happened is metered
        # whatever happens to the reply path. ``send`` only queues (the producer lingers), so
        # the caller's outcome is not delayed by it. A crash before the done mark redelivers the
        # plan; the done mark is what ends it.
        queued = [(event, await self._queue_usage(event)) for event in progress.events]
        try:
            await self.delivery.deliver(envelope, final, body_key=state.body_key)
        finally:
            for event, sent in queued:
                await self._confirm_usage(event, sent)
        await self._finish(plan, keep_body_key=envelope.mode in (Mode.ASYNC, Mode.BATCH))

    async def _queue_usage(self, event: UsageEvent) -> asyncio.Future[RecordMetadata] | None:
        try:
            sent: asyncio.Future[RecordMetadata] = await self.producer.send(
                USAGE.name, event.to_bytes(), key=event.request_id.encode()
            )
        except KafkaError:
            return None  # _confirm_usage sends it again
        return sent

    async def _confirm_usage(
        self, event: UsageEvent, sent: asyncio.Future[RecordMetadata] | None
    ) -> None:
        """Wait until Kafka holds the event, sending it again while the broker is down. Usage
        is money: an outage delays it and never drops it (metering stores a re-sent event once,
        by its id). The plan stays uncommitted meanwhile, so a worker that dies here leaves it
        to be redelivered."""
        give_up_at = time.monotonic() + _USAGE_PATIENCE_S
        while True:
            try:
                if sent is None:
                    sent = await self._queue_usage(event)
                if sent is not None:
                    await sent
                    return
            except KafkaError as exc:
                log.warning("usage event %s not sent yet: %s", event.event_id, type(exc).__name__)
            if time.monotonic() > give_up_at:
                log.error("usage event %s could not be sent; giving up", event.event_id)
                return
            sent = None
            await asyncio.sleep(_USAGE_RETRY_S)

    async def _finish(self, plan: DispatchPlan, *, keep_body_key: bool = False) -> None:
        deadline_ms = plan.envelope.deadline_ms
        try:
            await until_redis_answers(
                lambda: self.requests.finish(
                    plan.request_id, deadline_ms=deadline_ms, keep_body_key=keep_body_key
                ),
                deadline_ms=deadline_ms,
            )
        except DeadlinePassed:
            # Redis lost everything it held anyway (it keeps nothing on disk): the body key
            # is gone, so a redelivered plan is refused rather than served twice.
            log.warning("could not mark %s done: Redis was down", plan.request_id)

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
                tally = StreamTally()
                try:
                    result = await self._attempt(
                        plan, target, endpoint, chat, progress, attempt_id, tally
                    )
                except _AttemptStopped as stopped:
                    charge = await _Charge.of_failure(chat, tally)
                    self._record(
                        plan, target, endpoint, progress, picked_up_ms, stopped.info, charge
                    )
                    return self._final(plan, target, endpoint, attempt_id, error=stopped.info)
                except CallFailed as failed:
                    charge = await _Charge.of_failure(chat, tally)
                    self._record(
                        plan, target, endpoint, progress, picked_up_ms, failed.info, charge
                    )
                    last_error = failed.info
                    # A stream the caller has started reading cannot switch to another answer.
                    if progress.chunks_sent:
                        return self._final(plan, target, endpoint, attempt_id, error=failed.info)
                    delay = self.retry.delay_s(failed.info, tries)
                    if delay is not None and now_ms() + delay * 1000 < plan.envelope.deadline_ms:
                        await asyncio.sleep(delay)
                        continue
                    break
                charge = _Charge(result.usage)
                self._record(plan, target, endpoint, progress, picked_up_ms, None, charge, result)
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
        tally: StreamTally,
    ) -> CallResult:
        envelope = plan.envelope
        # Streamed only to a caller that reads chunks (an inbox to send them to).
        reply_to = envelope.reply_to if envelope.mode is Mode.STREAM else None
        timeouts = self.timeouts.get(target.provider) or VendorTimeouts()
        call = VendorCall(
            session=self.session,
            adapter=adapter_for(target.provider),
            endpoint=endpoint,
            model=target.model,
            chat=chat,
            timeout=timeouts.for_attempt(
                stream=reply_to is not None,
                remaining_s=(envelope.deadline_ms - now_ms()) / 1000,
            ),
        )
        started = time.monotonic()
        try:
            if reply_to is None:
                return await call.complete()

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
                try:
                    await self.replies.send_many(reply_to, chunks)
                except REDIS_DOWN as exc:
                    raise ReplyPathLost from exc
                progress.chunks_sent += len(chunks)

            return await call.stream(relay, tally)
        finally:
            VENDOR_SECONDS.labels(target.provider).observe(time.monotonic() - started)

    async def _raise_if_caller_gone(self, request_id: str, progress: _Progress) -> None:
        now = time.monotonic()
        if now - progress.cancel_checked_at < _CANCEL_CHECK_S:
            return
        progress.cancel_checked_at = now
        try:
            cancelled = await self.requests.cancelled(request_id)
        except REDIS_DOWN:
            return  # cannot tell: keep serving (a lost chunk ends the stream anyway)
        if cancelled:
            raise CallerGone

    def _record(
        self,
        plan: DispatchPlan,
        target: Target,
        endpoint: ProviderEndpoint,
        progress: _Progress,
        picked_up_ms: int,
        error: ErrorInfo | None,
        charge: _Charge,
        result: CallResult | None = None,
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
                usage=charge.usage,
                usage_estimated=charge.estimated,
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

    async def _give_up(
        self, plan: DispatchPlan, code: ErrorCode, message: str, *, retryable: bool = False
    ) -> None:
        info = ErrorInfo(code=code, message=message, retryable=retryable)
        await self.delivery.deliver_error(plan.envelope, info)
        await self._finish(plan)


def new_instance_id() -> str:
    return uuid.uuid4().hex[:12]
