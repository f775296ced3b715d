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
    AUTO = "auto"  # chosen by the router (later)


class Target(WireModel):
    provider: str
    model: str  # the vendor's own model id, as sent on the wire
    canonical_id: str  # provider/model, the catalogue key


class DispatchPlan(WireModel):
    schema_version: Literal[1] = 1
    request_id: str
    envelope: RequestEnvelope
    targets: list[Target] = Field(min_length=1)
    reason: RouteReason
    reason_detail: str = ""
    planned_at_ms: int

    @property
    def primary(self) -> Target:
        return self.targets[0]
