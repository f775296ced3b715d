"""The ingress side of the message path: seal a request, publish it, and wait for its replies.

One ``Gateway`` per ingress process holds the Kafka producer, the Redis pool, and the reply
inbox that all waiting requests share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts import topics
from contracts._base import now_ms
from contracts.chat import ChatRequest
from contracts.envelope import ClientProtocol, Mode, RequestEnvelope, Retention, TraceContext
from contracts.errors import ErrorCode, ErrorInfo
from contracts.features import RequestFeatures
from contracts.governance import ModelAccess, ModelRateLimit
from contracts.sealing import new_key, seal
from contracts.topics import Lane
from services.common.kafka import ensure_topics, make_producer
from services.common.kafka_health import KafkaWatch
from services.common.redis_client import REDIS_DOWN, connect_redis
from services.common.replies import ReplyInbox, ReplySubscription
from services.common.request_state import RequestStore

log = logging.getLogger(__name__)

# The body key outlives the deadline a little, so a worker that picks the request up at the
# last moment can still open it.
_KEY_GRACE_S = 120


class PublishFailed(Exception):
    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


@dataclass(frozen=True, kw_only=True)
class Submission:
    """A request as the route hands it over."""

    request_id: str
    protocol: ClientProtocol
    mode: Mode
    model: str
    chat: ChatRequest
    tenant: str
    key_id: str
    timeout_s: float
    tags: dict[str, str]
    models: list[str] = field(default_factory=list)
    prompt_tokens_estimate: int | None = None
    features: RequestFeatures | None = None
    model_access: ModelAccess | None = None
    fallback_on_content_policy: bool = False
    traceparent: str | None = None
    # The project keeps request logs this long; None (the default): zero retention.
    retention_days: int | None = None
    rate_limits: dict[str, ModelRateLimit] = field(default_factory=dict)
    rate_counted: list[str] = field(default_factory=list)


class Gateway:
    def __init__(self, bootstrap: str, redis_url: str, *, publish_timeout_s: float = 5.0) -> None:
        self._bootstrap = bootstrap
        self._producer: AIOKafkaProducer = make_producer(bootstrap, client_id="sy-ingress")
        self._publish_timeout_s = publish_timeout_s
        self.redis = connect_redis(redis_url)
        self.inbox = ReplyInbox(self.redis)
        self.kafka = KafkaWatch(self._producer.client)
        self._requests = RequestStore(self.redis)
        self._background: set[asyncio.Task[None]] = set()

    @property
    def producer(self) -> AIOKafkaProducer:
        return self._producer

    async def start(self) -> None:
        await ensure_topics(self._bootstrap, [topics.REQUESTS, topics.GOVERNANCE])
        await self._producer.start()
        await self.kafka.start()
        await self.inbox.start()

    async def stop(self) -> None:
        await self.kafka.stop()
        await self.inbox.stop()
        await self._producer.stop()
        await self.redis.aclose()

    async def submit(self, submission: Submission) -> tuple[str, ReplySubscription]:
        """Publish the request and return its id and the subscription its replies arrive on.
        The caller must ``inbox.unregister(request_id)`` when it stops listening."""
        if not self.kafka.up:
            # Known down: say so now (before sealing anything), not after the publish time-out.
            raise PublishFailed(_unavailable())
        request_id = submission.request_id
        created = now_ms()
        deadline = created + int(submission.timeout_s * 1000)
        body_key = new_key()
        sealed = seal(
            submission.chat.model_dump_json(exclude_none=True).encode(),
            body_key,
            associated=request_id.encode(),
        )
        envelope = RequestEnvelope(
            request_id=request_id,
            tenant=submission.tenant,
            key_id=submission.key_id,
            client_protocol=submission.protocol,
            mode=submission.mode,
            lane=Lane.INTERACTIVE,
            requested_model=submission.model,
            requested_models=submission.models,
            prompt_tokens_estimate=submission.prompt_tokens_estimate,
            features=submission.features,
            model_access=submission.model_access,
            rate_limits=submission.rate_limits,
            rate_counted=submission.rate_counted,
            fallback_on_content_policy=submission.fallback_on_content_policy,
            sealed_body=sealed,
            retention=Retention.FULL if submission.retention_days else Retention.NONE,
            retention_days=submission.retention_days,
            created_at_ms=created,
            deadline_ms=deadline,
            trace=TraceContext(traceparent=submission.traceparent),
            reply_to=self.inbox.key,
            tags=submission.tags,
            user_tag=submission.chat.user,
        )
        subscription = self.inbox.register(request_id)
        try:
            await self._requests.open(
                request_id, body_key, ttl_s=int(submission.timeout_s) + _KEY_GRACE_S
            )
            async with asyncio.timeout(self._publish_timeout_s):
                await self._producer.send_and_wait(
                    topics.REQUESTS.name, envelope.to_bytes(), key=request_id.encode()
                )
        except (KafkaError, *REDIS_DOWN, TimeoutError) as exc:
            self.inbox.unregister(request_id)
            # A send that timed out may still reach Kafka later, when the caller has had its 503
            # and perhaps retried: without its key the worker refuses it (no vendor call, no
            # charge). And the key of a request that never reached Kafka would wait out its TTL.
            with contextlib.suppress(*REDIS_DOWN):
                await self._requests.discard(request_id)
            log.warning("could not publish request %s: %s", request_id, type(exc).__name__)
            raise PublishFailed(_unavailable()) from exc
        return request_id, subscription

    @staticmethod
    def new_request_id() -> str:
        return uuid.uuid4().hex

    def abandon(self, request_id: str) -> None:
        """The caller went away mid-stream: ask the worker to stop the vendor call. Fire and
        forget, since it runs while the caller's task is being cancelled (an await there would
        be cancelled too)."""
        task = asyncio.create_task(self._abandon(request_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _abandon(self, request_id: str) -> None:
        try:
            await self._requests.cancel(request_id, ttl_s=_KEY_GRACE_S)
        except REDIS_DOWN:
            log.warning("could not cancel abandoned request %s", request_id)


# How long a refused caller is told to wait: a broker or Redis restart takes seconds.
_RETRY_AFTER_S = 5.0


def _unavailable() -> ErrorInfo:
    return ErrorInfo(
        code=ErrorCode.UNAVAILABLE,
        message="Switchyard cannot accept requests right now; try again shortly.",
        retryable=True,
        retry_after_s=_RETRY_AFTER_S,
    )
