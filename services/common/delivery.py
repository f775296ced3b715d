"""Delivering a request's outcome to whoever waits for it.

Sync and streaming callers wait on an ingress process: their outcome goes to the Redis inbox
named in ``reply_to``. Async and batch outcomes go to ``sy.results.v1``, with the response sealed
like the request body was.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from contracts._base import now_ms
from contracts.envelope import Mode, RequestEnvelope
from contracts.errors import ErrorInfo
from contracts.outcomes import RequestOutcome
from contracts.replies import OutcomeStatus, ReplyFinal
from contracts.sealing import seal
from contracts.topics import RESULTS
from services.common.replies import ReplySender


class OutcomeDelivery:
    def __init__(self, replies: ReplySender, producer: AIOKafkaProducer) -> None:
        self._replies = replies
        self._producer = producer

    async def deliver(
        self, envelope: RequestEnvelope, final: ReplyFinal, *, body_key: bytes | None
    ) -> None:
        if envelope.mode in (Mode.SYNC, Mode.STREAM):
            if envelope.reply_to is not None:
                await self._replies.send(envelope.reply_to, final)
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

    async def deliver_error(
        self, envelope: RequestEnvelope, info: ErrorInfo, *, attempt_id: str = "none"
    ) -> None:
        final = ReplyFinal(
            request_id=envelope.request_id,
            attempt_id=attempt_id,
            status=OutcomeStatus.ERROR,
            error=info,
        )
        await self.deliver(envelope, final, body_key=None)
