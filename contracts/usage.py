"""Usage events: one per vendor attempt, published by workers to ``sy.usage.v1``.

No prompt or completion text, ever. Cost is not here: metering prices each event from the
catalogue, so a price fix can re-price history and workers need no price table.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts._base import WireModel
from contracts.chat import Usage
from contracts.envelope import ClientProtocol, Mode
from contracts.errors import ErrorCode
from contracts.replies import OutcomeStatus
from contracts.topics import Lane


class Timings(WireModel):
    queue_ms: int = 0  # accepted by ingress -> picked up by the worker
    ttft_ms: int | None = None  # vendor call start -> first token (streaming only)
    vendor_ms: int = 0  # the vendor call, whole
    total_ms: int = 0  # accepted by ingress -> outcome known
    overhead_ms: int = 0  # total - vendor: what Switchyard itself added


class UsageEvent(WireModel):
    schema_version: Literal[1] = 1
    # ``{request_id}:{attempt}``: the same attempt redelivered has the same id, and is counted once.
    event_id: str
    request_id: str
    attempt: int
    ts_ms: int
    tenant: str
    key_id: str
    user_tag: str = ""  # the request's OpenAI ``user`` field, if it had one
    protocol: ClientProtocol
    mode: Mode
    lane: Lane
    provider: str
    model: str  # canonical id
    requested_model: str
    # For a request routed automatically: the task type and difficulty ingress read from the
    # prompt (contracts.features), and the policy that chose the model.
    task_type: str = ""
    difficulty: float | None = None
    policy: str = ""
    route_reason: str = ""
    status: OutcomeStatus
    error_class: ErrorCode | None = None
    usage: Usage = Field(default_factory=Usage)
    # The vendor never reported usage for this attempt (a stream it cut, say); the tokens were
    # counted by Switchyard's tokenizer (services.workers.estimate). Charged all the same.
    usage_estimated: bool = False
    timings: Timings = Field(default_factory=Timings)
    simulated: bool = False
    batch_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @staticmethod
    def make_id(request_id: str, attempt: int) -> str:
        return f"{request_id}:{attempt}"
