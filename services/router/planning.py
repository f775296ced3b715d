"""Turning a request into a dispatch plan.

``Planner`` is the seam for automatic model choice: today ``CataloguePlanner`` resolves the model
the caller named (``provider/model``, a bare catalogue id, or an alias); an ``auto`` planner that
classifies the task and weighs cost, latency and health will implement the same protocol.
"""

from __future__ import annotations

from typing import Protocol

from contracts._base import now_ms
from contracts.catalogue import Catalogue, UnknownModel
from contracts.envelope import RequestEnvelope
from contracts.errors import ErrorInfo
from contracts.plan import DispatchPlan, Target


class PlanRefused(Exception):
    """No plan can serve this request; ``info`` says why, for the caller."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


class Planner(Protocol):
    def plan(self, envelope: RequestEnvelope) -> DispatchPlan: ...


class CataloguePlanner:
    def __init__(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue

    def plan(self, envelope: RequestEnvelope) -> DispatchPlan:
        try:
            resolution = self._catalogue.resolve(envelope.requested_model)
        except UnknownModel as exc:
            raise PlanRefused(exc.error_info()) from exc
        card = resolution.card
        return DispatchPlan(
            request_id=envelope.request_id,
            envelope=envelope,
            targets=[
                Target(provider=card.provider, model=card.model, canonical_id=card.canonical_id)
            ],
            reason=resolution.how,
            reason_detail=f"{envelope.requested_model} -> {card.canonical_id}",
            planned_at_ms=now_ms(),
        )
