"""Building requests the way ingress does: a chat request sealed with its own key, in an
envelope whose replies go to a test's own Redis stream. Shared by the router and worker tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis

from contracts._base import now_ms
from contracts.chat import ChatRequest, Message, Role, TextPart
from contracts.envelope import ClientProtocol, Mode, RequestEnvelope
from contracts.replies import REPLY_ADAPTER, ReplyChunk, ReplyFinal
from contracts.sealing import new_key, seal


@dataclass(frozen=True)
class SealedRequest:
    envelope: RequestEnvelope
    body_key: bytes
    chat: ChatRequest

    @property
    def request_id(self) -> str:
        return self.envelope.request_id


def chat_request(prompt: str) -> ChatRequest:
    return ChatRequest(messages=[Message(role=Role.USER, content=[TextPart(text=prompt)])])


def sealed_request(
    *,
    model: str = "gpt-4o-mini",
    prompt: str = "Say hello.",
    mode: Mode = Mode.SYNC,
    timeout_s: float = 60.0,
    deadline_ms: int | None = None,
) -> SealedRequest:
    request_id = f"test-{uuid.uuid4().hex}"
    chat = chat_request(prompt)
    key = new_key()
    created = now_ms()
    envelope = RequestEnvelope(
        request_id=request_id,
        tenant="tenant-test",
        key_id="key-test",
        client_protocol=ClientProtocol.OPENAI_CHAT,
        mode=mode,
        requested_model=model,
        sealed_body=seal(
            chat.model_dump_json(exclude_none=True).encode(), key, associated=request_id.encode()
        ),
        created_at_ms=created,
        deadline_ms=created + int(timeout_s * 1000) if deadline_ms is None else deadline_ms,
        reply_to=f"sy:inbox:test-{uuid.uuid4().hex[:12]}",
        tags={"suite": "integration"},
    )
    return SealedRequest(envelope=envelope, body_key=key, chat=chat)


async def replies_on(redis: aioredis.Redis, stream: str) -> list[ReplyChunk | ReplyFinal]:
    """Everything written to a reply stream so far, in order (XRANGE)."""
    # The RESP2 reply shape, with bytes: the clients here never decode responses.
    entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(stream))
    return [REPLY_ADAPTER.validate_json(fields[b"r"]) for _id, fields in entries]
