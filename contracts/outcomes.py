"""Outcomes of async and batch requests, published to ``sy.results.v1``."""

from __future__ import annotations

from typing import Literal

from contracts._base import WireModel
from contracts.envelope import Mode
from contracts.errors import ErrorInfo
from contracts.replies import OutcomeStatus
from contracts.sealing import SealedBody


class RequestOutcome(WireModel):
    schema_version: Literal[1] = 1
    request_id: str
    tenant: str
    mode: Mode
    status: OutcomeStatus
    # The ChatResponse, JSON-encoded and sealed with the request's key, like the request body.
    sealed_response: SealedBody | None = None
    error: ErrorInfo | None = None
    provider: str | None = None
    model: str | None = None
    simulated: bool = False
    batch_id: str | None = None
    custom_id: str | None = None
    finished_at_ms: int
