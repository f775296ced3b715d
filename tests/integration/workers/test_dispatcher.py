"""``Dispatcher.handle`` end to end: real Redis (sealing key, done mark, reply stream), real Kafka
(``sy.usage.v1``) and the real vendor simulator on a free local port, wired the way
``services.workers.service`` wires them.

What the simulator answers is deterministic (derived from the conversation), so the expected
text is computed with the simulator's own reply planner; what it was asked is read back from
its ``/_sim/stats`` counters.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from contracts import topics
from contracts._base import now_ms
from contracts.chat import Usage
from contracts.envelope import Mode
from contracts.errors import ErrorCode, ErrorInfo
from contracts.plan import DispatchPlan, RouteReason, Target
from contracts.replies import OutcomeStatus, ReplyChunk, ReplyFinal
from contracts.topics import Lane
from contracts.usage import UsageEvent
from services.common import request_state
from services.common.delivery import OutcomeDelivery
from services.common.replies import ReplySender
from services.common.request_state import ClaimKeeper, RequestState, RequestStore, claim_key
from services.vendorsim.conversation import Conversation, Turn
from services.vendorsim.directives import parse_directives
from services.vendorsim.knobs import SimKnobs
from services.vendorsim.reply import plan_reply
from services.vendorsim.server import RunningSim, serve_in_background
from services.workers.dispatch import Dispatcher
from services.workers.guard import Held, Pass
from services.workers.http_pool import vendor_session
from services.workers.providers.registry import endpoint_for
from services.workers.retry import RetryPolicy
from services.workers.timeouts import VendorTimeouts
from tests.integration.common.polling import eventually
from tests.integration.common.sealed_requests import SealedRequest, replies_on, sealed_request
from tests.integration.common.topic_reading import records_with_key

pytestmark = pytest.mark.integration

OUTPUT_TOKENS = 16
GPT_4O_MINI = Target(provider="openai", model="gpt-4o-mini", canonical_id="openai/gpt-4o-mini")
HAIKU = Target(
    provider="anthropic", model="claude-haiku-4-5", canonical_id="anthropic/claude-haiku-4-5"
)
CHAT_PATH = "/v1/chat/completions"
# Retries in tests wait milliseconds, not the production quarter second (the simulator's
# Retry-After of 1 s is capped by max_s).
FAST_RETRIES = RetryPolicy(max_attempts=3, base_s=0.01, max_s=0.02)

MakeDispatcher = Callable[[RetryPolicy], Dispatcher]


def simulated_text(prompt: str) -> str:
    """What the simulator answers a one-message conversation, by its own rules."""
    conversation = Conversation(model=GPT_4O_MINI.model, turns=(Turn(role="user", text=prompt),))
    reply = plan_reply(
        conversation,
        parse_directives(prompt),
        output_tokens=OUTPUT_TOKENS,
        digest=conversation.digest(),
    )
    return reply.text


def unique_prompt(directives: str = "") -> str:
    # Unique, so the simulator's ``fail=...xN`` counters and replies belong to this test alone.
    return f"Tell me about harbors, case {uuid.uuid4().hex[:8]}. {directives}".strip()


@pytest.fixture
def sim() -> Iterator[RunningSim]:
    knobs = SimKnobs(
        output_tokens=OUTPUT_TOKENS,
        ttft_ms=0,
        itl_ms=0,
        error_rate_429=0,
        error_rate_500=0,
        error_rate_529=0,
        error_rate_timeout=0,
        fault_disconnect_rate=0,
        fault_malformed_rate=0,
    )
    with serve_in_background(knobs) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    client = vendor_session(16)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def store(redis: aioredis.Redis) -> RequestStore:
    return RequestStore(redis)


@pytest.fixture
def make_dispatcher(
    sim: RunningSim,
    session: aiohttp.ClientSession,
    producer: AIOKafkaProducer,
    redis: aioredis.Redis,
    store: RequestStore,
) -> MakeDispatcher:
    def make(retry: RetryPolicy) -> Dispatcher:
        replies = ReplySender(redis)
        return Dispatcher(
            instance_id=f"test-{uuid.uuid4().hex[:8]}",
            session=session,
            # No OPENAI_API_KEY / OPENAI_BASE_URL: the simulator.
            endpoints={"openai": endpoint_for("openai", {}, sim.base_url)},
            producer=producer,
            replies=replies,
            delivery=OutcomeDelivery(replies, producer),
            requests=store,
            retry=retry,
            timeouts={"openai": VendorTimeouts(response_s=30.0, stream_idle_s=30.0)},
        )

    return make


@pytest.fixture
def sim_stats(sim: RunningSim) -> Callable[[], Awaitable[dict[str, int]]]:
    async def read() -> dict[str, int]:
        """Chat calls the simulator answered, in total and by status ("200", "429", ...)."""
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"{sim.base_url}/_sim/stats") as response,
        ):
            assert response.status == 200
            stats = await response.json()
        return {"chat": stats["by_endpoint"].get(CHAT_PATH, 0), **stats["by_status"]}

    return read


SimStats = Callable[[], Awaitable[dict[str, int]]]


def plan_for(request: SealedRequest) -> DispatchPlan:
    return DispatchPlan(
        request_id=request.request_id,
        envelope=request.envelope,
        targets=[GPT_4O_MINI],
        reason=RouteReason.CATALOGUE_ID,
        reason_detail="gpt-4o-mini -> openai/gpt-4o-mini",
        planned_at_ms=now_ms(),
    )


async def opened(store: RequestStore, request: SealedRequest) -> DispatchPlan:
    """As ingress does before publishing: the body key goes to Redis."""
    await store.open(request.request_id, request.body_key, ttl_s=300)
    return plan_for(request)


async def usage_events(kafka_bootstrap: str, request_id: str) -> list[UsageEvent]:
    records = await records_with_key(kafka_bootstrap, topics.USAGE.name, request_id.encode())
    return [UsageEvent.model_validate_json(record.value) for record in records]


async def assert_refused_without_a_vendor_call(
    request: SealedRequest,
    code: ErrorCode,
    *,
    redis: aioredis.Redis,
    kafka_bootstrap: str,
    store: RequestStore,
    sim_stats: SimStats,
) -> None:
    """The caller got an error with ``code``; nothing was billed, the vendor never called."""
    [final] = await replies_on(redis, request.envelope.reply_to or "")
    assert isinstance(final, ReplyFinal)
    assert final.status is OutcomeStatus.ERROR
    assert final.error is not None
    assert final.error.code is code
    assert await usage_events(kafka_bootstrap, request.request_id) == []
    assert await store.load(request.request_id) == RequestState(body_key=None, done=True)
    assert await sim_stats() == {"chat": 0}


async def test_a_sync_request_is_answered_metered_and_marked_done_once(
    make_dispatcher: MakeDispatcher,
    store: RequestStore,
    redis: aioredis.Redis,
    kafka_bootstrap: str,
    sim_stats: SimStats,
) -> None:
    prompt = unique_prompt()
    request = sealed_request(prompt=prompt)
    plan = await opened(store, request)
    dispatcher = make_dispatcher(FAST_RETRIES)

    await dispatcher.handle(plan)

    [final] = await replies_on(redis, request.envelope.reply_to or "")
    assert isinstance(final, ReplyFinal)
    assert final.status is OutcomeStatus.OK
    assert final.error is None
    assert final.request_id == request.request_id
    assert (final.provider, final.model, final.simulated) == ("openai", "openai/gpt-4o-mini", True)
    assert final.response is not None
    assert final.response.text() == simulated_text(prompt)
    assert final.response.usage.output_tokens == OUTPUT_TOKENS

    [event] = await usage_events(kafka_bootstrap, request.request_id)
    assert event.event_id == UsageEvent.make_id(request.request_id, event.attempt)
    assert event.attempt == 0
    assert event.status is OutcomeStatus.OK
    assert event.error_class is None
    assert event.usage == final.response.usage
    assert event.usage.input_tokens > 0
    assert (event.provider, event.model, event.requested_model) == (
        "openai",
        "openai/gpt-4o-mini",
        "gpt-4o-mini",
    )
    assert event.route_reason == RouteReason.CATALOGUE_ID.value
    assert (event.tenant, event.key_id, event.mode, event.simulated) == (
        "tenant-test",
        "key-test",
        Mode.SYNC,
        True,
    )
    assert event.tags == {"suite": "integration"}
    # Zero data retention: neither the prompt nor the answer is in the usage event.
    assert prompt not in event.model_dump_json()
    assert simulated_text(prompt) not in event.model_dump_json()

    assert await store.load(request.request_id) == RequestState(body_key=None, done=True)
    assert await sim_stats() == {"chat": 1, "200": 1}

    # Redelivered (the worker died before committing): nothing happens a second time.
    await dispatcher.handle(plan)
    await make_dispatcher(FAST_RETRIES).handle(plan)  # nor on another worker
    assert len(await replies_on(redis, request.envelope.reply_to or "")) == 1
    assert len(await usage_events(kafka_bootstrap, request.request_id)) == 1
    assert await sim_stats() == {"chat": 1, "200": 1}


async def test_rate_limited_attempts_are_retried_and_each_one_is_metered(
    make_dispatcher: MakeDispatcher,
    store: RequestStore,
    redis: aioredis.Redis,
    kafka_bootstrap: str,
    sim_stats: SimStats,
) -> None:
    prompt = unique_prompt("[sim:fail=429x2]")
    request = sealed_request(prompt=prompt)
    dispatcher = make_dispatcher(FAST_RETRIES)

    await dispatcher.handle(await opened(store, request))

    [final] = await replies_on(redis, request.envelope.reply_to or "")
    assert isinstance(final, ReplyFinal)
    assert final.status is OutcomeStatus.OK
    assert final.response is not None
    assert final.response.text() == simulated_text(prompt)
    assert final.attempt_id == f"{dispatcher.instance_id}:2"

    events = await usage_events(kafka_bootstrap, request.request_id)
    assert [e.attempt for e in events] == [0, 1, 2]
    assert [e.event_id for e in events] == [
        UsageEvent.make_id(request.request_id, n) for n in range(3)
    ]
    assert [e.status for e in events] == [OutcomeStatus.ERROR] * 2 + [OutcomeStatus.OK]
    assert [e.error_class for e in events] == [ErrorCode.VENDOR_RATE_LIMITED] * 2 + [None]
    # Failed attempts are not charged: they carry no tokens.
    assert [e.usage.output_tokens for e in events] == [0, 0, OUTPUT_TOKENS]

    assert await store.load(request.request_id) == RequestState(body_key=None, done=True)
    assert await sim_stats() == {"chat": 3, "429": 2, "200": 1}


async def test_a_target_that_keeps_failing_ends_in_an_error_after_max_attempts(
    make_dispatcher: MakeDispatcher,
    store: RequestStore,
    redis: aioredis.Redis,
    kafka_bootstrap: str,
    sim_stats: SimStats,
) -> None:
    request = sealed_request(prompt=unique_prompt("[sim:fail=500]"))
    dispatcher = make_dispatcher(RetryPolicy(max_attempts=2, base_s=0.01, max_s=0.02))

    await dispatcher.handle(await opened(store, request))

    [final] = await replies_on(redis, request.envelope.reply_to or "")
    assert isinstance(final, ReplyFinal)
    assert final.status is OutcomeStatus.ERROR
    assert final.response is None
    assert final.error is not None
    assert final.error.code is ErrorCode.VENDOR_ERROR
    assert (final.provider, final.model) == ("openai", "openai/gpt-4o-mini")

    events = await usage_events(kafka_bootstrap, request.request_id)
    assert [(e.attempt, e.status, e.error_class) for e in events] == [
        (0, OutcomeStatus.ERROR, ErrorCode.VENDOR_ERROR),
        (1, OutcomeStatus.ERROR, ErrorCode.VENDOR_ERROR),
    ]
    # The caller has its answer: the request is over and its body unreadable.
    assert await store.load(request.request_id) == RequestState(body_key=None, done=True)
    assert await sim_stats() == {"chat": 2, "500": 2}


async def test_a_stream_relays_numbered_chunks_of_one_attempt_then_the_final_reply(
    make_dispatcher: MakeDispatcher,
    store: RequestStore,
    redis: aioredis.Redis,
    kafka_bootstrap: str,
    sim_stats: SimStats,
) -> None:
    prompt = unique_prompt()
    request = sealed_request(prompt=prompt, mode=Mode.STREAM)
    dispatcher = make_dispatcher(FAST_RETRIES)

    await dispatcher.handle(await opened(store, request))

    replies = await replies_on(redis, request.envelope.reply_to or "")
    *chunks, final = replies
    assert all(isinstance(c, ReplyChunk) for c in chunks)
    stream = [c for c in chunks if isinstance(c, ReplyChunk)]
    assert len(stream) > 1
    assert [c.seq for c in stream] == list(range(len(stream)))
    assert {c.attempt_id for c in stream} == {f"{dispatcher.instance_id}:0"}
    assert {(c.provider, c.model, c.simulated) for c in stream} == {
        ("openai", "openai/gpt-4o-mini", True)
    }
    assert "".join(c.delta.text for c in stream) == simulated_text(prompt)
    assert isinstance(final, ReplyFinal)
    assert final.status is OutcomeStatus.OK
    assert final.attempt_id == f"{dispatcher.instance_id}:0"

    [event] = await usage_events(kafka_bootstrap, request.request_id)
    assert (event.status, event.mode) == (OutcomeStatus.OK, Mode.STREAM)
    assert event.usage.output_tokens == OUTPUT_TOKENS
    assert event.timings.ttft_ms is not None
    assert await store.load(request.request_id) == RequestState(body_key=None, done=True)
    assert await sim_stats() == {"chat": 1, "200": 1}


async def test_a_stream_that_fails_before_its_first_token_is_retried_under_a_new_attempt(
    make_dispatcher: MakeDispatcher,
    store: RequestStore,
    redis: aioredis.Redis,
    kafka_bootstrap: str,
) -> None:
    prompt = unique_prompt("[sim:fail=429x1]")
    request = sealed_request(prompt=prompt, mode=Mode.STREAM)
    dispatcher = make_dispatcher(FAST_RETRIES)

    await dispatcher.handle(await opened(store, request))

    *chunks, final = await replies_on(redis, request.envelope.reply_to or "")
    stream = [c for c in chunks if isinstance(c, ReplyChunk)]
    assert len(stream) == len(chunks) > 1
    # Only the attempt that answered reached the caller, numbered from the start.
    assert {c.attempt_id for c in stream} == {f"{dispatcher.instance_id}:1"}
    assert [c.seq for c in stream] == list(range(len(stream)))
    assert "".join(c.delta.text for c in stream) == simulated_text(prompt)
    assert isinstance(final, ReplyFinal)
    assert (final.status, final.attempt_id) == (OutcomeStatus.OK, f"{dispatcher.instance_id}:1")
    events = await usage_events(kafka_bootstrap, request.request_id)
    assert [(e.attempt, e.status) for e in events] == [
        (0, OutcomeStatus.ERROR),
        (1, OutcomeStatus.OK),
    ]


async def test_a_request_past_its_deadline_is_answered_with_an_error_without_a_vendor_call(
    make_dispatcher: MakeDispatcher,
    store: RequestStore,
    redis: aioredis.Redis,
    kafka_bootstrap: str,
    sim_stats: SimStats,
) -> None:
    request = sealed_request(prompt=unique_prompt(), deadline_ms=now_ms() - 1_000)

    await make_dispatcher(FAST_RETRIES).handle(await opened(store, request))

    await assert_refused_without_a_vendor_call(
        request,
        ErrorCode.DEADLINE_EXCEEDED,
        redis=redis,
        kafka_bootstrap=kafka_bootstrap,
        store=store,
        sim_stats=sim_stats,
    )


async def test_a_request_whose_key_is_gone_is_answered_with_an_error_without_a_vendor_call(
    make_dispatcher: MakeDispatcher,
    store: RequestStore,
    redis: aioredis.Redis,
    kafka_bootstrap: str,
    sim_stats: SimStats,
) -> None:
    request = sealed_request(prompt=unique_prompt())

    # Never opened: as if the key's TTL ran out while the plan waited in Kafka.
    await make_dispatcher(FAST_RETRIES).handle(plan_for(request))

    await assert_refused_without_a_vendor_call(
        request,
        ErrorCode.UNAVAILABLE,
        redis=redis,
        kafka_bootstrap=kafka_bootstrap,
        store=store,
        sim_stats=sim_stats,
    )


async def test_a_stream_that_breaks_after_its_first_token_ends_in_an_error_not_a_retry(
    make_dispatcher: MakeDispatcher,
    store: RequestStore,
    redis: aioredis.Redis,
    kafka_bootstrap: str,
    sim_stats: SimStats,
) -> None:
    prompt = unique_prompt("[sim:disconnect]")
    request = sealed_request(prompt=prompt, mode=Mode.STREAM)
    dispatcher = make_dispatcher(FAST_RETRIES)

    await dispatcher.handle(await opened(store, request))

    *chunks, final = await replies_on(redis, request.envelope.reply_to or "")
    stream = [c for c in chunks if isinstance(c, ReplyChunk)]
    assert len(stream) == len(chunks) >= 1
    # The caller saw part of one answer: it must not be spliced with another attempt's.
    assert {c.attempt_id for c in stream} == {f"{dispatcher.instance_id}:0"}
    assert simulated_text(prompt).startswith("".join(c.delta.text for c in stream))
    assert isinstance(final, ReplyFinal)
    assert final.status is OutcomeStatus.ERROR
    assert final.attempt_id == f"{dispatcher.instance_id}:0"
    assert final.error is not None
    # The vendor's fault (today classified vendor_unreachable: the body was cut short).
    assert final.error.code in {
        ErrorCode.VENDOR_UNREACHABLE,
        ErrorCode.VENDOR_BAD_RESPONSE,
        ErrorCode.VENDOR_ERROR,
    }
    [event] = await usage_events(kafka_bootstrap, request.request_id)
    assert (event.status, event.error_class) == (OutcomeStatus.ERROR, final.error.code)
    assert await sim_stats() == {"chat": 1, "200": 1}
    assert await store.load(request.request_id) == RequestState(body_key=None, done=True)


async def test_a_stream_whose_caller_went_away_stops_the_vendor_call(
    make_dispatcher: MakeDispatcher,
    store: RequestStore,
    redis: aioredis.Redis,
    kafka_bootstrap: str,
    sim_stats: SimStats,
) -> None:
    # 400 tokens, 10 ms apart: about four seconds of answer if nobody stops it.
    request = sealed_request(
        prompt=unique_prompt("[sim:tokens=400] [sim:itl=10]"), mode=Mode.STREAM
    )
    reply_to = request.envelope.reply_to or ""
    handling = asyncio.create_task(
        make_dispatcher(FAST_RETRIES).handle(await opened(store, request))
    )

    async def streaming() -> bool:
        return any(isinstance(reply, ReplyChunk) for reply in await replies_on(redis, reply_to))

    await eventually(streaming, "the first chunks reach the caller")
    await store.cancel(request.request_id, ttl_s=60)  # what ingress does when the caller leaves
    await asyncio.wait_for(handling, timeout=30)

    *chunks, final = await replies_on(redis, reply_to)
    assert 0 < len(chunks) < 400  # stopped part-way, not run to its end
    assert isinstance(final, ReplyFinal)
    assert final.error is not None
    assert final.error.code is ErrorCode.CANCELLED
    [event] = await usage_events(kafka_bootstrap, request.request_id)
    assert (event.status, event.error_class) == (OutcomeStatus.ERROR, ErrorCode.CANCELLED)
    # The simulator counts the answers it finished: this one was cut off by the worker.
    assert await sim_stats() == {"chat": 0}
    assert await store.load(request.request_id) == RequestState(body_key=None, done=True)


async def test_a_plan_another_worker_holds_waits_for_its_claim_to_lapse_then_is_served_once(
    make_dispatcher: MakeDispatcher,
    store: RequestStore,
    redis: aioredis.Redis,
    sim_stats: SimStats,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rebalance handed this worker a plan that a worker now dead had claimed: it waits until
    the dead worker's claim lapses (its own keeper never renews a claim it does not hold), then
    serves it; the vendor is called once."""
    monkeypatch.setattr(request_state, "CLAIM_RENEW_S", 0.2)
    request = sealed_request(prompt=unique_prompt())
    plan = await opened(store, request)
    await redis.set(claim_key(request.request_id, 0), b"dead-worker", ex=2)
    dispatcher = make_dispatcher(FAST_RETRIES)
    keeper = ClaimKeeper(redis, dispatcher.instance_id)
    await keeper.start()
    try:
        dispatcher = replace(dispatcher, claims=keeper)
        await asyncio.wait_for(dispatcher.handle(plan), timeout=30)
    finally:
        await keeper.stop()
    [final] = await replies_on(redis, request.envelope.reply_to or "")
    assert isinstance(final, ReplyFinal)
    assert final.status is OutcomeStatus.OK
    assert await sim_stats() == {"chat": 1, "200": 1}


class OpenAIAtCapacity:
    """A guard under which openai is always at its concurrency limit (short waits, as the
    capacity controller suggests them) and every other provider is free."""

    async def admit(
        self, target: Target, *, lane: Lane, tokens: int, lease_s: float
    ) -> Pass | Held:
        if target.provider == "openai":
            info = ErrorInfo(code=ErrorCode.VENDOR_RATE_LIMITED, message="busy", retryable=True)
            return Held(wait_s=0.25, info=info)
        return Pass()

    async def settle(
        self, target: Target, granted: Pass, *, error: ErrorInfo | None, usage: Usage | None
    ) -> None:
        return None


async def test_a_target_at_capacity_is_left_for_the_next_after_the_patience_runs_out(
    make_dispatcher: MakeDispatcher,
    store: RequestStore,
    redis: aioredis.Redis,
    sim: RunningSim,
) -> None:
    request = sealed_request(prompt=unique_prompt(), timeout_s=60.0)
    plan = (await opened(store, request)).model_copy(update={"targets": [GPT_4O_MINI, HAIKU]})
    dispatcher = replace(
        make_dispatcher(FAST_RETRIES),
        endpoints={p: endpoint_for(p, {}, sim.base_url) for p in ("openai", "anthropic")},
        guard=OpenAIAtCapacity(),
    )
    # Waiting out the deadline instead would end in deadline_exceeded, which moves nowhere.
    await dispatcher.handle(plan)
    [final] = await replies_on(redis, request.envelope.reply_to or "")
    assert isinstance(final, ReplyFinal)
    assert final.status is OutcomeStatus.OK
    assert final.model == HAIKU.canonical_id
    assert final.route is not None
    assert "openai/gpt-4o-mini: vendor_rate_limited" in final.route
