"""Replies: what a worker sends back to the waiting ingress process through Redis.

Replies for one request all go to the ``reply_to`` stream named in its envelope; the ingress
process reads that one stream and hands each reply to the request it belongs to.
``attempt_id`` names one try at one target: when a stream's chunks change attempt, ingress knows
the worker restarted the call and that the caller has already seen part of another answer.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from contracts._base import WireModel
from contracts.chat import ChatDelta, ChatResponse
from contracts.errors import ErrorInfo


class ReplyChunk(WireModel):
    kind: Literal["chunk"] = "chunk"
    request_id: str
    attempt_id: str
    seq: int
    delta: ChatDelta
    provider: str
    model: str  # canonical id of the target that answers
    simulated: bool = False
    # On a request's first chunk only (they become response headers): vendor attempts so far,
    # this one included, and how the answering target was reached, in a few words.
    attempts: int | None = None
    route: str | None = None


class OutcomeStatus(StrEnum):
    OK = "ok"
    ERROR = "error"


class ReplyFinal(WireModel):
    kind: Literal["final"] = "final"
    request_id: str
    attempt_id: str
    status: OutcomeStatus
    response: ChatResponse | None = None
    error: ErrorInfo | None = None
    provider: str | None = None
    model: str | None = None
    simulated: bool = False
    attempts: int | None = None  # vendor attempts the request made, across every target
    route: str | None = None  # how the answering (or last) target was reached


Reply = Annotated[ReplyChunk | ReplyFinal, Field(discriminator="kind")]
REPLY_ADAPTER: TypeAdapter[ReplyChunk | ReplyFinal] = TypeAdapter(Reply)
