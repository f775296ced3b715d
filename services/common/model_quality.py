"""Expected quality of a model per task type: the prior automatic choice ranks by.

The shipped table is ``services/common/data/model_quality.yaml`` (where its numbers come from is
written at its top); the routing config's ``quality:`` section adds models or replaces entries.
A model without an entry is never chosen by a policy that lists no candidates, and a policy that
names one is refused: ranking it would need a number nobody gave.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field

from contracts.features import TaskType, known_task

Share = Annotated[float, Field(ge=0, le=1)]
Delta = Annotated[float, Field(ge=-1, le=1)]


class QualityEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    quality: Share
    # Typical time to a short answer, until the workers have observed the model.
    latency_ms: int = Field(default=2000, ge=1)
    # The vendor refuses a temperature or top_p other than its default (OpenAI's reasoning
    # models answer 400): a request that sets one never goes there automatically.
    fixed_sampling: bool = False
    tasks: dict[TaskType, Delta] = Field(default_factory=dict)

    def for_task(self, task: TaskType | str) -> float:
        known = known_task(task)
        delta = self.tasks.get(known, 0.0) if known is not None else 0.0
        return min(max(self.quality + delta, 0.0), 1.0)


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    models: dict[str, QualityEntry]


@functools.cache
def shipped_quality() -> dict[str, QualityEntry]:
    """The shipped table, keyed by canonical id as written in the file."""
    raw = resources.files("services.common").joinpath("data", "model_quality.yaml").read_text()
    return dict(_Table.model_validate(yaml.safe_load(raw)).models)
