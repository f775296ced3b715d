"""The request log of a project that opted into retention (``contracts.request_log``): built by
the worker that answered, the only place where the prompt and the whole answer meet in the
clear, and sent to ``sy.request_log.v1`` for metering to keep until it expires.

Only for an envelope marked ``Retention.FULL``; every other request leaves no text behind.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts._base import now_ms
from contracts.chat import ChatDelta, ChatRequest
from contracts.envelope import Mode, RequestEnvelope
from contracts.replies import OutcomeStatus, ReplyFinal
from contracts.request_log import RequestLogEntry
from contracts.topics import REQUEST_LOG

log = logging.getLogger(__name__)

_DAY_MS = 86_400_000
_SEND_TIMEOUT_S = 10.0


def log_entry(
    envelope: RequestEnvelope,
    chat: ChatRequest,
    final: ReplyFinal,
    streamed: list[ChatDelta] | None,
) -> RequestLogEntry:
    finished = now_ms()
    if final.response is not None:
        response: str | None = final.response.model_dump_json(exclude_none=True)
    elif streamed:
        response = orjson.dumps(
            [d.model_dump(mode="json", exclude_none=True) for d in streamed]
        ).decode()
    else:
        response = None
    return RequestLogEntry(
        request_id=envelope.request_id,
        tenant=envelope.tenant,
        key_id=envelope.key_id,
        ts_ms=finished,
        expires_at_ms=finished + (envelope.retention_days or 1) * _DAY_MS,
        requested_model=envelope.requested_model,
        model=final.model,
        provider=final.provider,
        status="ok" if final.status is OutcomeStatus.OK else "error",
        error_code=final.error.code.value if final.error else None,
        attempts=final.attempts or 0,
        stream=envelope.mode is Mode.STREAM,
        request_json=chat.model_dump_json(exclude_none=True),
        response_json=response,
    )


async def publish(producer: AIOKafkaProducer, entry: RequestLogEntry) -> None:
    """Send the entry; a failure is logged (without the text) and the entry is lost: a log the
    project asked to keep, not money, and never worth holding the request's outcome back."""
    try:
        async with asyncio.timeout(_SEND_TIMEOUT_S):
            await producer.send_and_wait(
                REQUEST_LOG.name, entry.to_bytes(), key=entry.tenant.encode()
            )
    except (KafkaError, TimeoutError) as exc:
        log.error("request log of %s not kept: %s", entry.request_id, type(exc).__name__)
