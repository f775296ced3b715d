"""Delivering a request's outcome to whoever waits for it.

Sync and streaming callers wait on an ingress process: their outcome goes to the Redis inbox
named in ``reply_to``. Async and batch outcomes go to ``sy.results.v1``, with the response sealed
like the request body was.

Redis may be down or restarting when an outcome is ready (the vendor has answered, the caller is
still waiting). A reply is then retried until Redis is back or the request's deadline has passed:
the ingress process keeps waiting until that deadline, and its inbox reader reconnects on its own,
so an answer that arrives in time still reaches the caller. Past the deadline the caller has had
its 504 already, and the reply is dropped with a log line.
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaProducer

from contracts._base import now_ms
from contracts.envelope import Mode, RequestEnvelope
from contracts.errors import ErrorInfo
from contracts.outcomes import RequestOutcome
from contracts.replies import OutcomeStatus, ReplyFinal
from contracts.sealing import seal
from contracts.topics import RESULTS
from services.common.deadlines import DeadlinePassed
from services.common.redis_client import until_redis_answers
from services.common.replies import ReplySender

log = logging.getLogger(__name__)


class OutcomeDelivery:
    def __init__(self, replies: ReplySender, producer: AIOKafkaProducer) -> None:
        self._replies = replies
        self._producer = producer

    async def deliver(
        self, envelope: RequestEnvelope, final: ReplyFinal, *, body_key: bytes | None
    ) -> None:
        if envelope.mode in (Mode.SYNC, Mode.STREAM):
            if envelope.reply_to is not None:
                await self._reply(envelope, final, envelope.reply_to)
            return
        sealed = None
        if final.response is not None and body_key is not None:
            sealed = seal(
                final.response.model_dump_json().encode(),
                body_key,
                associated=envelope.request_id.encode(),
            )
        outcome = RequestOutcome(
            request_id=envelope.request_id,
            tenant=envelope.tenant,
            mode=envelope.mode,
            status=final.status,
            sealed_response=sealed,
            error=final.error,
            provider=final.provider,
            model=final.model,
            simulated=final.simulated,
            batch_id=envelope.batch_id,
            custom_id=envelope.custom_id,
            finished_at_ms=now_ms(),
        )
        await self._producer.send_and_wait(
            RESULTS.name, outcome.to_bytes(), key=envelope.request_id.encode()
        )

    async def _reply(self, envelope: RequestEnvelope, final: ReplyFinal, reply_to: str) -> None:
        try:
            await until_redis_answers(
                lambda: self._replies.send(reply_to, final), deadline_ms=envelope.deadline_ms
            )
        except DeadlinePassed:
            log.warning(
                "dropped the outcome of %s: Redis stayed unreachable until its deadline",
                envelope.request_id,
            )

    async def deliver_error(
        self,
        envelope: RequestEnvelope,
        info: ErrorInfo,
        *,
        attempt_id: str = "none",
        attempts: int = 0,
    ) -> None:
        """``attempts``: the vendor attempts made before this failure (ingress releases the
        request's credit hold once metering has settled that many)."""
        final = ReplyFinal(
            request_id=envelope.request_id,
            attempt_id=attempt_id,
            status=OutcomeStatus.ERROR,
            error=info,
            attempts=attempts,
        )
        await self.deliver(envelope, final, body_key=None)
