"""Request logs: the prompt and the answer of one request, for a project that opted into
retention (``data_retention`` ``none``, for ``retention_days``).

Published by the worker that answered to ``sy.request_log.v1`` only for such a project, and
written by metering into ClickHouse's ``request_log`` with a TTL at ``expires_at``. Every other
project keeps no text anywhere: its prompt travels sealed and is never logged.
"""

from __future__ import annotations

from typing import Literal

from contracts._base import WireModel


class RequestLogEntry(WireModel):
    schema_version: Literal[1] = 1
    request_id: str
    tenant: str
    key_id: str
    ts_ms: int  # when the outcome was known
    expires_at_ms: int  # kept until then, and not a moment longer
    requested_model: str
    model: str | None = None  # canonical id of the model that answered (or last tried)
    provider: str | None = None
    status: Literal["ok", "error"]
    error_code: str | None = None
    attempts: int = 0
    stream: bool = False
    # The normalised request (contracts.chat.ChatRequest) as JSON.
    request_json: str
    # The answer: the ChatResponse as JSON, or for a stream the list of its deltas; None when
    # nothing was answered.
    response_json: str | None = None
