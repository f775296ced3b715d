"""Routing policies: how ``model: "auto"`` (and ``auto:<name>``) weighs quality, cost and latency.

A policy is part of the routing config (``services.common.routing_config``), under ``policies:``,
keyed by its full name (``auto:support-bot``). Four are built in and may be redefined there:

- ``auto:cheap``: the least cost that keeps a modest quality floor;
- ``auto:balanced`` (what plain ``auto`` means): quality first on hard prompts, cost on easy ones;
- ``auto:best``: the best model for the task, whatever it costs;
- ``auto:fast``: the quickest to answer, above a quality floor.

``services.router.auto`` applies them; ingress only needs the names, to refuse an unknown one at
the door and to know when to compute the prompt's features.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.features import TaskType, known_task

AUTO = "auto"
DEFAULT_POLICY = "auto:balanced"
POLICY_NAME = re.compile(r"auto:[a-z0-9][a-z0-9_.-]{0,62}")

Share = Annotated[float, Field(ge=0, le=1)]
Weight = Annotated[float, Field(ge=0, le=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Weights(_Strict):
    """How much each term counts in the ranking (``services.router.auto``). Quality is 0..1
    (``services.common.model_quality``); cost counts 1 for a model a thousand times dearer than
    the cheapest candidate, latency 1 for one about thirty times slower than the quickest."""

    quality: Weight = 1.0
    cost: Weight = 0.5
    latency: Weight = 0.15

    @model_validator(mode="after")
    def _something_counts(self) -> Self:
        if self.quality == self.cost == self.latency == 0:
            raise ValueError("at least one weight must be above 0")
        return self


class TaskOverride(_Strict):
    """What changes for one task type; anything not given stays as the policy has it."""

    candidates: list[str] | None = Field(default=None, min_length=1)
    weights: Weights | None = None
    min_quality: Share | None = None


class Policy(_Strict):
    description: str = ""
    # The models to choose among; None means every model of the quality table.
    candidates: list[str] | None = Field(default=None, min_length=1)
    weights: Weights = Weights()
    # Hard floor on a candidate's quality for the request's task.
    min_quality: Share = 0.0
    # Hard caps, USD per 1M tokens.
    max_input_price: Decimal | None = Field(default=None, ge=0)
    max_output_price: Decimal | None = Field(default=None, ge=0)
    providers: list[str] | None = None  # only these providers, when given
    exclude_providers: list[str] = Field(default_factory=list)
    # Only providers the routing config marks ``zero_data_retention`` (the operator's contract
    # with that vendor keeps no prompts).
    require_zero_data_retention: bool = False
    # The answer length assumed when the caller sets no max_tokens: what the context window
    # must hold beyond the prompt, and what the cost estimate counts.
    expected_output_tokens: int = Field(default=1024, ge=1)
    # How many next-best candidates follow the first in the plan.
    fallbacks: int = Field(default=2, ge=0, le=9)
    tasks: dict[TaskType, TaskOverride] = Field(default_factory=dict)

    def for_task(self, task: TaskType | str) -> Policy:
        """This policy with the task's override applied."""
        known = known_task(task)
        override = self.tasks.get(known) if known is not None else None
        if override is None:
            return self
        update: dict[str, object] = {}
        if override.candidates is not None:
            update["candidates"] = override.candidates
        if override.weights is not None:
            update["weights"] = override.weights
        if override.min_quality is not None:
            update["min_quality"] = override.min_quality
        return self.model_copy(update=update)


def _floors(**by_task: float) -> dict[TaskType, TaskOverride]:
    return {TaskType(task): TaskOverride(min_quality=floor) for task, floor in by_task.items()}


# Code, math and tool calls fail visibly when a model is not up to them, so every built-in
# policy keeps a higher floor there than for chat: "cheap" never means a model weak at code.
BUILT_IN: dict[str, Policy] = {
    "auto:cheap": Policy(
        description="the least cost that keeps a modest quality floor",
        weights=Weights(quality=0.4, cost=1.5, latency=0.1),
        min_quality=0.6,
        tasks=_floors(code=0.75, reasoning=0.75, tool_use=0.75),
    ),
    "auto:balanced": Policy(
        description="quality first on hard prompts, cost on easy ones",
        weights=Weights(quality=1.0, cost=0.5, latency=0.15),
        min_quality=0.65,
        tasks=_floors(code=0.82, reasoning=0.82, tool_use=0.8, extraction=0.75, summarisation=0.75),
    ),
    "auto:best": Policy(
        description="the best model for the task, whatever it costs",
        weights=Weights(quality=1.0, cost=0.02, latency=0.02),
        min_quality=0.8,
    ),
    "auto:fast": Policy(
        description="the quickest to answer, above a quality floor",
        weights=Weights(quality=0.4, cost=0.1, latency=1.0),
        min_quality=0.65,
        tasks=_floors(code=0.75, reasoning=0.75, tool_use=0.75),
    ),
}


def policy_name(requested: str) -> str | None:
    """The policy a requested model name stands for (``auto`` is ``auto:balanced``), or None
    when the name does not look like a policy at all."""
    if requested == AUTO:
        return DEFAULT_POLICY
    if requested.startswith(AUTO + ":"):
        return requested
    return None
