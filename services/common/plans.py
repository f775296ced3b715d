"""Sending a dispatch plan to the provider topic of its current target: by the router (the
first target) and by a worker handing the plan on to the next one."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts.plan import DispatchPlan
from contracts.topics import dispatch_topic
from services.common.deadlines import retry_until

# How often a plan Kafka refused is sent again.
_REPUBLISH_S = 1.0


async def publish_plan(producer: AIOKafkaProducer, plan: DispatchPlan) -> None:
    """Publish ``plan`` to its current target's provider topic, keyed by its request.

    A broker that went away while the request was being handled comes back in seconds: keep
    trying until the request's deadline rather than drop an accepted request. Raises
    ``DeadlinePassed`` when Kafka would not take it by then."""
    topic = dispatch_topic(plan.current.provider, plan.envelope.lane).name
    await retry_until(
        lambda: producer.send_and_wait(topic, plan.to_bytes(), key=plan.request_id.encode()),
        deadline_ms=plan.envelope.deadline_ms,
        retry_on=(KafkaError,),
        every_s=_REPUBLISH_S,
    )
