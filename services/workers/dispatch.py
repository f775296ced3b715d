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
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata
from prometheus_client import Counter, Histogram

from contracts._base import now_ms
from contracts.chat import ChatDelta, ChatRequest, Usage
from contracts.envelope import Mode, RequestEnvelope, Retention
from contracts.errors import ErrorCode, ErrorInfo
from contracts.plan import DispatchPlan, RouteReason, Target
from contracts.replies import OutcomeStatus, ReplyChunk, ReplyFinal
from contracts.sealing import SealBroken, unseal
from contracts.topics import PROVIDERS, USAGE
from contracts.usage import Timings, UsageEvent
from services.common.deadlines import DeadlinePassed
from services.common.delivery import OutcomeDelivery
from services.common.plans import publish_plan
from services.common.rate_limits import RateLimit, RateLimiter
from services.common.redis_client import REDIS_DOWN, until_redis_answers
from services.common.replies import ReplySender
from services.common.request_state import (
    HANDED_ON,
    ClaimKeeper,
    RequestState,
    RequestStore,
    claim_key,
)
from services.workers import request_log
from services.workers.calls import CallFailed, CallResult, StreamTally, VendorCall
from services.workers.estimate import estimate_usage
from services.workers.guard import Guard, Held, UnguardedProviders
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
CLAIM_WAITS = Counter(
    "sy_worker_claim_waits_total", "Waits for another worker serving the same plan"
)
HANDED_OFF = Counter(
    "sy_worker_handed_off_total", "Plans handed to another provider's pool", ["to_provider"]
)


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

    attempt: int = 0  # the number the next attempt gets; numbered across the whole request
    chunks_sent: int = 0
    events: list[UsageEvent] = field(default_factory=list)
    cancel_checked_at: float = field(default_factory=time.monotonic)
    # Targets left behind, and why, in a few words each: the route the answer took.
    passed_over: list[str] = field(default_factory=list)
    # The streamed answer, kept only for a project that retains its logs (services.workers.
    # request_log); None otherwise, and nothing is kept.
    streamed: list[ChatDelta] | None = None

    def route(self, plan: DispatchPlan, answered_by: Target | None) -> str:
        # An automatic choice answered by its first choice (the plan moves only forward, so
        # nothing failed on the way) may still have skipped candidates while planning (no
        # worker, circuit open): its explanation, which names them, says more than "fallback
        # after" would.
        first_choice = plan.reason is RouteReason.AUTO and answered_by == plan.targets[0]
        if not self.passed_over or first_choice:
            return _header_words(plan.reason_detail or plan.reason.value)
        return _header_words("fallback after " + "; ".join(self.passed_over))


@dataclass(frozen=True)
class _HandOff:
    """The next target belongs to a provider this worker does not serve: its pool gets the plan."""

    cursor: int


@dataclass(frozen=True)
class _MoveOn:
    """This target cannot answer; the next one may."""

    info: ErrorInfo


# How often a copy of a plan that another worker serves looks whether that one finished.
_CLAIM_POLL_S = 0.5

# What the guard is told of an attempt that ended in an exception nobody expected.
_BROKEN = ErrorInfo(code=ErrorCode.INTERNAL, message="the attempt failed inside Switchyard")

# How long a request waits for capacity before it moves to its next target instead. A plan
# without one waits until its deadline.
_CAPACITY_PATIENCE_S = 1.0
_MAX_ROUTE_CHARS = 300


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
    # Circuit breakers, shared capacity and health statistics (services.workers.guard).
    guard: Guard = field(default_factory=UnguardedProviders)
    # Renews the claims of the plans being served (services.common.request_state); a
    # dispatcher without one (tests) still claims, with claims that lapse after their TTL.
    claims: ClaimKeeper | None = None
    # Whether a provider has a live worker (services.common.provider_registry): a plan is never
    # handed to a topic nobody consumes.
    served: Callable[[str], bool] = field(default=lambda provider: True)
    # The projects' rate limits on models the request did not name (services.common.
    # rate_limits); None (tests): not applied here.
    rate_limits: RateLimiter | None = None

    async def handle(self, plan: DispatchPlan) -> None:
        picked_up_ms = now_ms()
        try:
            state = await self._load_and_claim(plan)
        except DeadlinePassed:
            # Nothing was called, so nothing is charged; the caller has had its 504 by now.
            log.warning("gave up on %s: Redis was down until its deadline", plan.request_id)
            return
        if state.done or not state.claimed:
            SKIPPED.inc()
            return
        # Renewed only once it is ours: renewing another worker's claim while waiting for it
        # would keep a dead worker's claim alive for ever.
        key = claim_key(plan.request_id, plan.cursor)
        with self.claims.holding(key) if self.claims else contextlib.nullcontext():
            await self._serve_claimed(plan, state, picked_up_ms)

    async def _serve_claimed(
        self, plan: DispatchPlan, state: RequestState, picked_up_ms: int
    ) -> None:
        envelope = plan.envelope
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

        progress = _Progress(attempt=plan.next_attempt, passed_over=list(plan.passed_over))
        if envelope.retention is Retention.FULL:
            progress.streamed = []
        try:
            served = await self._serve(plan, chat, progress, picked_up_ms)
        except Exception:
            # A bug: the caller is told by ``fail``; the vendor calls already made are metered.
            for event in progress.events:
                await self._confirm_usage(event, await self._queue_usage(event))
            raise
        # Usage first, before anything that needs Redis: a vendor call that happened is metered
        # whatever happens to the reply path. ``send`` only queues (the producer lingers), so
        # the caller's outcome is not delayed by it. A crash before the done mark redelivers the
        # plan; the done mark is what ends it.
        queued = [(event, await self._queue_usage(event)) for event in progress.events]
        try:
            if isinstance(served, _HandOff):
                # Not done: the next provider's pool finishes it (and needs the body key).
                await self._hand_off(plan, served, progress, state.body_key)
                return
            await self.delivery.deliver(envelope, served, body_key=state.body_key)
        finally:
            for event, sent in queued:
                await self._confirm_usage(event, sent)
        if progress.streamed is not None:
            await request_log.publish(
                self.producer, request_log.log_entry(envelope, chat, served, progress.streamed)
            )
        await self._finish(plan, keep_body_key=envelope.mode in (Mode.ASYNC, Mode.BATCH))

    async def _load_and_claim(self, plan: DispatchPlan) -> RequestState:
        """The request's state, with this worker's claim on the plan. Another worker's claim
        means it is serving this very plan (a rebalance moved the partition while it worked):
        wait until it is done or its claim lapses (it died), never call the vendor beside it.
        Raises ``DeadlinePassed``."""
        deadline_ms = plan.envelope.deadline_ms
        owner = (plan.cursor, self.instance_id)
        while True:
            state = await until_redis_answers(
                lambda: self.requests.load(plan.request_id, claim=owner), deadline_ms=deadline_ms
            )
            if state.claimed or state.done or state.held_by == HANDED_ON:
                return state
            if now_ms() > deadline_ms:
                raise DeadlinePassed(f"{plan.request_id} stayed claimed by another worker")
            CLAIM_WAITS.inc()
            await asyncio.sleep(_CLAIM_POLL_S)

    async def _hand_off(
        self, plan: DispatchPlan, hand_off: _HandOff, progress: _Progress, body_key: bytes
    ) -> None:
        """Publish the plan to the next target's provider topic. A redelivered plan hands off
        again; the second copy finds the request done (or is served with the same attempt
        numbers, so metering still counts each attempt once)."""
        envelope = plan.envelope
        target = plan.targets[hand_off.cursor]
        moved = plan.handed_on(
            hand_off.cursor, next_attempt=progress.attempt, passed_over=progress.passed_over
        )
        try:
            await publish_plan(self.producer, moved)
        except DeadlinePassed:
            log.warning("could not hand %s on to %s", plan.request_id, target.provider)
            info = ErrorInfo(
                code=ErrorCode.UNAVAILABLE,
                message="Switchyard could not move the request to its next model in time.",
                retryable=True,
            )
            final = self._final(plan, target, None, "none", progress, error=info)
            await self.delivery.deliver(envelope, final, body_key=body_key)
            await self._finish(plan)
            return
        HANDED_OFF.labels(target.provider).inc()
        # Without the mark (Redis down), a copy read later waits for the claim to lapse.
        with contextlib.suppress(*REDIS_DOWN):
            await self.requests.handed_on(
                plan.request_id, plan.cursor, deadline_ms=envelope.deadline_ms
            )

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
    ) -> ReplyFinal | _HandOff:
        """Try the plan's targets from its cursor on, each with retries, until one answers, a
        failure ends the request, or the next target is another provider's to call."""
        envelope = plan.envelope
        last_error = ErrorInfo(code=ErrorCode.NO_ROUTE, message="no target could be tried")
        last: tuple[Target, ProviderEndpoint | None] | None = None
        for index in range(plan.cursor, len(plan.targets)):
            target = plan.targets[index]
            endpoint = self.endpoints.get(target.provider)
            if endpoint is None:
                handable = target.provider in PROVIDERS and self.served(target.provider)
                if handable and progress.chunks_sent == 0:
                    return _HandOff(cursor=index)
                last_error = ErrorInfo(
                    code=ErrorCode.NO_ROUTE, message=f"provider {target.provider} is not served"
                )
                progress.passed_over.append(f"{target.canonical_id}: not served")
                continue
            over_limit = await self._over_project_limit(envelope, target, chat)
            if over_limit is not None:
                last_error = over_limit
                progress.passed_over.append(f"{target.canonical_id}: project rate limit")
                continue
            has_next = index + 1 < len(plan.targets)
            tried = await self._try_target(
                plan, target, endpoint, chat, progress, picked_up_ms, has_next=has_next
            )
            if isinstance(tried, ReplyFinal):
                return tried
            last_error, last = tried.info, (target, endpoint)
            progress.passed_over.append(f"{target.canonical_id}: {tried.info.code.value}")
            # A stream the caller has started reading cannot switch to another answer.
            if progress.chunks_sent or not RetryPolicy.worth_another_target(
                last_error, content_policy=envelope.fallback_on_content_policy
            ):
                break
        attempt_id = f"{self.instance_id}:{progress.attempt}"
        if last is None:
            return self._final(plan, None, None, attempt_id, progress, error=last_error)
        return self._final(plan, *last, attempt_id, progress, error=last_error)

    async def _over_project_limit(
        self, envelope: RequestEnvelope, target: Target, chat: ChatRequest
    ) -> ErrorInfo | None:
        """Why the project may not call this target now (its rate limit on the model), or None.
        Ingress counted the models the request named; a model chosen by a route, ``auto`` or
        as a fallback is counted here, when it is about to be called. Redis down: allowed (the
        vendor's own limits still stand)."""
        spec = envelope.rate_limits.get(target.canonical_id)
        if spec is None or self.rate_limits is None or target.canonical_id in envelope.rate_counted:
            return None
        limit = RateLimit(
            requests_per_minute=spec.requests_per_minute,
            tokens_per_minute=spec.tokens_per_minute,
            requests_per_day=spec.requests_per_day,
        )
        try:
            decision = await self.rate_limits.admit(
                envelope.tenant,
                target.canonical_id,
                tokens=_token_reservation(envelope.prompt_tokens_estimate, chat),
                limit=limit,
            )
        except REDIS_DOWN:
            return None
        if decision.allowed:
            return None
        return ErrorInfo(
            code=ErrorCode.RATE_LIMITED,
            message=(
                f"Rate limit reached for '{target.canonical_id}' in project '{envelope.tenant}'"
                f" on {decision.limited_by}."
            ),
            retryable=decision.retry_after_s is not None,
            retry_after_s=decision.retry_after_s,
        )

    async def _try_target(
        self,
        plan: DispatchPlan,
        target: Target,
        endpoint: ProviderEndpoint,
        chat: ChatRequest,
        progress: _Progress,
        picked_up_ms: int,
        *,
        has_next: bool,
    ) -> ReplyFinal | _MoveOn:
        """One target, retried by the policy. Waiting for capacity is not an attempt, and no
        wait (for capacity or a retry's backoff) ever holds a slot others need."""
        envelope = plan.envelope
        reserve = _token_reservation(envelope.prompt_tokens_estimate, chat)
        tries = 0
        waited_s = 0.0  # for capacity, on this target
        while True:
            remaining_s = (envelope.deadline_ms - now_ms()) / 1000
            if remaining_s <= 0:
                info = ErrorInfo(
                    code=ErrorCode.DEADLINE_EXCEEDED,
                    message="The request's deadline passed while it waited for the vendor.",
                )
                return _MoveOn(info)
            admitted = await self.guard.admit(
                target, lane=envelope.lane, tokens=reserve, lease_s=remaining_s
            )
            if isinstance(admitted, Held):
                patience_left = _CAPACITY_PATIENCE_S - waited_s
                if admitted.circuit_open or (has_next and admitted.wait_s > patience_left):
                    return _MoveOn(admitted.info)
                pause = min(admitted.wait_s, remaining_s)
                await asyncio.sleep(pause)
                waited_s += pause
                continue
            tries += 1
            attempt_id = f"{self.instance_id}:{progress.attempt}"
            tally = StreamTally()
            try:
                result = await self._attempt(
                    plan, target, endpoint, chat, progress, attempt_id, tally
                )
            except (_AttemptStopped, CallFailed) as failure:
                info = failure.info
                await self.guard.settle(target, admitted, error=info, usage=tally.usage)
                charge = await _Charge.of_failure(chat, tally)
                self._record(plan, target, endpoint, progress, picked_up_ms, info, charge)
                # Stopped by Switchyard, or the caller holds part of this answer: it ends here.
                if isinstance(failure, _AttemptStopped) or progress.chunks_sent:
                    return self._final(plan, target, endpoint, attempt_id, progress, error=info)
                delay = self.retry.delay_s(info, tries, has_next=has_next)
                if delay is None or now_ms() + delay * 1000 >= envelope.deadline_ms:
                    return _MoveOn(info)
                await asyncio.sleep(delay)
                continue
            except BaseException:
                # A bug, or the worker shutting down: free the slot (and a probe) before it goes.
                await self.guard.settle(target, admitted, error=_BROKEN, usage=tally.usage)
                raise
            await self.guard.settle(target, admitted, error=None, usage=result.usage)
            self._record(
                plan, target, endpoint, progress, picked_up_ms, None, _Charge(result.usage), result
            )
            return self._final(plan, target, endpoint, attempt_id, progress, result=result)

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
                first = progress.chunks_sent == 0
                chunks = [
                    ReplyChunk(
                        request_id=plan.request_id,
                        attempt_id=attempt_id,
                        seq=progress.chunks_sent + i,
                        delta=delta,
                        provider=target.provider,
                        model=target.canonical_id,
                        simulated=endpoint.simulated,
                        # The response headers come from the first chunk; the attempt counts.
                        attempts=progress.attempt + 1 if first and i == 0 else None,
                        route=progress.route(plan, target) if first and i == 0 else None,
                    )
                    for i, delta in enumerate(deltas)
                ]
                try:
                    await self.replies.send_many(reply_to, chunks)
                except REDIS_DOWN as exc:
                    raise ReplyPathLost from exc
                progress.chunks_sent += len(chunks)
                if progress.streamed is not None:
                    progress.streamed.extend(deltas)

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
                user_tag=envelope.user_tag or "",
                protocol=envelope.client_protocol,
                mode=envelope.mode,
                lane=envelope.lane,
                provider=target.provider,
                model=target.canonical_id,
                requested_model=envelope.requested_model,
                task_type=str(envelope.features.task) if envelope.features else "",
                difficulty=envelope.features.difficulty if envelope.features else None,
                policy=plan.policy or "",
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
        progress: _Progress,
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
            attempts=progress.attempt,
            route=progress.route(plan, target),
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
        await self.delivery.deliver_error(plan.envelope, info, attempts=plan.next_attempt)
        await self._finish(plan)


def _token_reservation(prompt_estimate: int | None, chat: ChatRequest) -> int:
    """Tokens reserved against the provider's tokens-per-minute limit before the call; the real
    count corrects it afterwards. The output side is what the caller capped it at, or a guess."""
    return (prompt_estimate or 0) + (chat.sampling.max_output_tokens or _OUTPUT_GUESS)


# What a call without ``max_tokens`` is assumed to produce, for reservation only.
_OUTPUT_GUESS = 256


def _header_words(text: str) -> str:
    """Fit for an HTTP header: ASCII, one line, not too long."""
    ascii_only = text.encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")
    return ascii_only[:_MAX_ROUTE_CHARS]


def new_instance_id() -> str:
    return uuid.uuid4().hex[:12]
