"""``Router.handle`` with a real producer and Redis: a resolvable model becomes a dispatch plan
on the provider's topic, keyed by request id; an unknown one becomes an error reply.

The dispatch topic is the real ``sy.dispatch.openai.v1`` (the router derives it from the
provider), which other tests share; each test reads back only the records keyed by its own
request id.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer, ConsumerRecord

from contracts.catalogue import default_catalogue
from contracts.envelope import RequestEnvelope
from contracts.errors import ErrorCode
from contracts.plan import DispatchPlan, RouteReason, Target
from contracts.replies import OutcomeStatus, ReplyFinal
from contracts.topics import TopicSpec
from services.common.delivery import OutcomeDelivery
from services.common.kafka import ensure_topics
from services.common.replies import ReplySender
from services.router.planning import CataloguePlanner
from services.router.service import Router
from tests.integration.common.sealed_requests import replies_on, sealed_request
from tests.integration.common.topic_reading import records_with_key

pytestmark = pytest.mark.integration

GPT_4O_MINI = Target(provider="openai", model="gpt-4o-mini", canonical_id="openai/gpt-4o-mini")


@pytest.fixture
def router(producer: AIOKafkaProducer, redis: aioredis.Redis) -> Router:
    return Router(
        CataloguePlanner(default_catalogue()),
        producer,
        OutcomeDelivery(ReplySender(redis), producer),
    )


@pytest.fixture
async def requests_topic(kafka_bootstrap: str) -> str:
    """A private stand-in for ``sy.requests.v1``, which the full stack's router consumes."""
    name = f"test.requests.{uuid.uuid4().hex[:12]}"
    await ensure_topics(
        kafka_bootstrap, [TopicSpec(name=name, partitions=1, retention_ms=3_600_000)]
    )
    return name


@pytest.fixture
def as_record(
    producer: AIOKafkaProducer, requests_topic: str, kafka_bootstrap: str
) -> Callable[[RequestEnvelope], Awaitable[ConsumerRecord[bytes, bytes]]]:
    """Publishes an envelope as ingress does and reads it back: the record the router's
    consumer would hand to ``handle``."""

    async def publish(envelope: RequestEnvelope) -> ConsumerRecord[bytes, bytes]:
        key = envelope.request_id.encode()
        await producer.send_and_wait(requests_topic, envelope.to_bytes(), key=key)
        [record] = await records_with_key(kafka_bootstrap, requests_topic, key)
        return record

    return publish


AsRecord = Callable[[RequestEnvelope], Awaitable[ConsumerRecord[bytes, bytes]]]


def aliased_openai_model() -> tuple[list[str], Target]:
    """An OpenAI model of the shipped catalogue with its aliases (e.g. ``gpt-mini-latest`` and
    ``openai/gpt-mini-latest``); looked up, since aliases move as models are released."""
    for card in default_catalogue().cards():
        if card.provider == "openai" and card.aliases:
            target = Target(provider="openai", model=card.model, canonical_id=card.canonical_id)
            return list(card.aliases), target
    raise AssertionError("the catalogue has no OpenAI model with an alias")


@pytest.mark.parametrize(
    ("requested", "reason"),
    [("gpt-4o-mini", RouteReason.CATALOGUE_ID), ("openai/gpt-4o-mini", RouteReason.EXPLICIT)],
)
async def test_a_known_model_is_planned_onto_its_providers_dispatch_topic(
    router: Router,
    as_record: AsRecord,
    kafka_bootstrap: str,
    requested: str,
    reason: RouteReason,
) -> None:
    request = sealed_request(model=requested)
    await router.handle(await as_record(request.envelope))

    records = await records_with_key(
        kafka_bootstrap, "sy.dispatch.openai.v1", request.request_id.encode()
    )
    assert len(records) == 1
    plan = DispatchPlan.model_validate_json(records[0].value)
    assert plan.request_id == request.request_id
    assert plan.targets == [GPT_4O_MINI]
    assert plan.reason is reason
    assert plan.reason_detail == f"{requested} -> openai/gpt-4o-mini"
    # The envelope travels on unchanged: still sealed, still naming where replies go.
    assert plan.envelope == request.envelope
    assert plan.planned_at_ms >= request.envelope.created_at_ms


async def test_an_alias_is_planned_onto_the_model_it_names(
    router: Router, as_record: AsRecord, kafka_bootstrap: str
) -> None:
    aliases, target = aliased_openai_model()
    for alias in aliases:
        request = sealed_request(model=alias)
        await router.handle(await as_record(request.envelope))

        records = await records_with_key(
            kafka_bootstrap, "sy.dispatch.openai.v1", request.request_id.encode()
        )
        assert len(records) == 1, alias
        plan = DispatchPlan.model_validate_json(records[0].value)
        assert plan.targets == [target], alias
        assert plan.reason is RouteReason.ALIAS, alias
        assert plan.reason_detail == f"{alias} -> {target.canonical_id}"


async def test_an_unknown_model_is_refused_with_an_error_reply_and_no_plan(
    router: Router, as_record: AsRecord, redis: aioredis.Redis, kafka_bootstrap: str
) -> None:
    request = sealed_request(model="gpt-4o-minu")
    await router.handle(await as_record(request.envelope))

    replies = await replies_on(redis, request.envelope.reply_to or "")
    assert len(replies) == 1
    final = replies[0]
    assert isinstance(final, ReplyFinal)
    assert final.request_id == request.request_id
    assert final.status is OutcomeStatus.ERROR
    assert final.error is not None
    assert final.error.code is ErrorCode.MODEL_NOT_FOUND
    assert final.error.param == "model"
    assert "gpt-4o-minu" in final.error.message
    # The near miss is suggested.
    assert "gpt-4o-mini" in final.error.message.removeprefix("The model 'gpt-4o-minu'")
    assert final.response is None
    assert (
        await records_with_key(
            kafka_bootstrap, "sy.dispatch.openai.v1", request.request_id.encode()
        )
        == []
    )
