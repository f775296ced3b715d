"""The request envelope: what ingress publishes to ``sy.requests.v1``."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from contracts._base import WireModel
from contracts.features import RequestFeatures
from contracts.governance import ModelAccess, ModelRateLimit
from contracts.sealing import SealedBody
from contracts.topics import Lane


class ClientProtocol(StrEnum):
    OPENAI_CHAT = "openai.chat_completions"
    ANTHROPIC_MESSAGES = "anthropic.messages"


class Mode(StrEnum):
    SYNC = "sync"  # the caller waits for one JSON answer
    STREAM = "stream"  # the caller reads chunks as they come (SSE)
    ASYNC = "async"  # the caller gets a job id; the outcome goes to sy.results.v1
    BATCH = "batch"  # a line of a batch file; the outcome goes to sy.results.v1


class Retention(StrEnum):
    """What of the prompt and completion may be kept. ``NONE`` is the default: text exists only
    sealed in Kafka and in memory while the request runs."""

    NONE = "none"
    FULL = "full"


class TraceContext(WireModel):
    traceparent: str | None = None
    tracestate: str | None = None


class RequestEnvelope(WireModel):
    schema_version: Literal[1] = 1
    request_id: str
    tenant: str
    key_id: str
    client_protocol: ClientProtocol
    mode: Mode
    lane: Lane = Lane.INTERACTIVE
    requested_model: str
    # A fallback list the caller gave (``models``, OpenRouter's convention), primary first; empty
    # when the caller named one model.
    requested_models: list[str] = Field(default_factory=list)
    # Prompt tokens, estimated by ingress from the body's size (no text needed): lets the router
    # pass over a model whose context window the prompt cannot fit, without a vendor call.
    prompt_tokens_estimate: int | None = None
    # What automatic model choice needs of the prompt, computed by ingress for ``auto`` requests
    # only (contracts.features): the router chooses from these and never opens the body.
    features: RequestFeatures | None = None
    # The models the caller's project may use (its ``model_permissions``); None: any. The router
    # passes over the others in every kind of plan, ``auto`` included.
    model_access: ModelAccess | None = None
    # The project's rate limits by canonical model id, for the worker to apply to a target the
    # request did not name; ``rate_counted``: the models ingress counted already (those named).
    rate_limits: dict[str, ModelRateLimit] = Field(default_factory=dict)
    rate_counted: list[str] = Field(default_factory=list)
    # The caller allows a refusal on content policy grounds to move to the next target.
    fallback_on_content_policy: bool = False
    # The normalised ``contracts.chat.ChatRequest``, JSON-encoded and sealed with the request's key.
    sealed_body: SealedBody
    created_at_ms: int
    deadline_ms: int
    retention: Retention = Retention.NONE
    # With ``Retention.FULL`` (the project's ``data_retention``): how long its log is kept.
    retention_days: int | None = None
    trace: TraceContext = Field(default_factory=TraceContext)
    # The Redis stream that the waiting ingress process reads; None for async and batch.
    reply_to: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    # OpenAI's ``user``: the caller's id for its own end user, carried for usage analytics.
    user_tag: str | None = None
    batch_id: str | None = None
    custom_id: str | None = None
