"""The dispatch plan: what the router publishes to a provider's dispatch topic."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from contracts._base import WireModel
from contracts.envelope import RequestEnvelope


class RouteReason(StrEnum):
    EXPLICIT = "explicit"  # provider/model as written
    CATALOGUE_ID = "catalogue_id"  # a bare model id found in the catalogue
    ALIAS = "alias"  # a catalogue alias
    ROUTE = "route"  # a named route of the routing config
    AUTO = "auto"  # chosen by the router under a routing policy (``auto``, ``auto:cheap``...)


class Target(WireModel):
    provider: str
    model: str  # the vendor's own model id, as sent on the wire
    canonical_id: str  # provider/model, the catalogue key


class DispatchPlan(WireModel):
    """An ordered list of targets, primary first. The router publishes it to the primary's
    provider topic; a worker that runs out of targets it can serve hands the plan on to the next
    target's provider topic, with ``cursor`` moved to that target."""

    schema_version: Literal[1] = 1
    request_id: str
    envelope: RequestEnvelope
    targets: list[Target] = Field(min_length=1)
    reason: RouteReason
    reason_detail: str = ""
    # The routing policy that chose the targets (``auto:balanced``), for ``RouteReason.AUTO``.
    policy: str | None = None
    planned_at_ms: int
    # The target this message is for. 0 from the router; a hand-off moves it on.
    cursor: int = Field(default=0, ge=0)
    # The number the next vendor attempt gets. Attempts are numbered across the whole request,
    # whichever worker makes them, so usage ``event_id``s never collide.
    next_attempt: int = Field(default=0, ge=0)
    # Why earlier targets were left, in a few words each ("openai/gpt-4o-mini: vendor_overloaded").
    passed_over: list[str] = Field(default_factory=list)

    @property
    def primary(self) -> Target:
        return self.targets[0]

    @property
    def current(self) -> Target:
        return self.targets[min(self.cursor, len(self.targets) - 1)]

    def handed_on(self, cursor: int, *, next_attempt: int, passed_over: list[str]) -> DispatchPlan:
        return self.model_copy(
            update={"cursor": cursor, "next_attempt": next_attempt, "passed_over": passed_over}
        )
