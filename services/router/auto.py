"""Automatic model choice: a routing policy, the prompt's features, and the candidates ranked.

Ingress read the prompt (``services.common.prompt_features``); the envelope carries what it
found (``contracts.features.RequestFeatures``: size, images, tools, JSON mode, task type,
difficulty) and never the text, so this module decides without opening the sealed body and makes
no network call: quality comes from a table in memory, prices from the catalogue, latency from a
snapshot of what the workers observed (``ObservedLatency``, refreshed in the background).

The decision, in two steps:

1. Hard constraints drop a candidate: a capability the request needs and the model lacks
   (images, tools, a JSON schema, JSON mode, ``reasoning_effort``) or a parameter it refuses
   (a temperature set for a model with fixed sampling), a context window that cannot hold the
   prompt and the expected answer, a ``max_tokens`` above what the model can write, a provider
   the policy excludes or that lacks zero data retention where the policy requires it, a price
   above the policy's caps, a quality for this task below the policy's floor, a model the
   caller's project may not use (its ``model_permissions``). The planner then also passes over
   open circuits and providers without a worker.
2. The rest are ranked by ``q * Q - c * C - l * L``: ``Q`` the model's quality for the task;
   ``C`` its estimated cost of this request in decades above the cheapest candidate's
   (``log10(cost / cheapest) / 3``: 1 for a model a thousand times dearer), ``L`` likewise its
   latency (``log10(latency / quickest) / 1.5``: 1 for about thirty times slower); ``q``, ``c``,
   ``l`` the policy's weights, with ``q`` scaled by the prompt's difficulty
   (``0.5 + difficulty``: half on the easiest prompts, 1.5x on the hardest): on a prompt a
   cheap model is likely to fail, quality buys more.

The best is the plan's first target; the next ``fallbacks`` follow it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from contracts.catalogue import Catalogue, ModelCard
from contracts.envelope import RequestEnvelope
from contracts.errors import ErrorCode, ErrorInfo
from contracts.features import RequestFeatures
from services.common.model_quality import QualityEntry
from services.common.routing_config import RoutingConfig
from services.common.routing_policy import Policy

__all__ = ["AutoChoice", "AutoChooser", "LatencyView", "NoCandidate"]

_PER_MILLION = Decimal(1_000_000)
# Reasons a candidate is left out that the caller's request, not the policy, decides.
_TOO_LONG = "context window too small"
_TOO_MANY_OUTPUT = "max_tokens above the model's limit"


class LatencyView(Protocol):
    def latency_ms(self, canonical_id: str) -> float | None:
        """A recent typical latency of the model, or None when too little was observed."""
        ...


class _NoLatency:
    def latency_ms(self, canonical_id: str) -> float | None:
        return None


class NoCandidate(Exception):
    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


@dataclass(frozen=True)
class Scored:
    card: ModelCard
    score: float
    quality: float


@dataclass(frozen=True)
class AutoChoice:
    """Every candidate that passed the hard constraints, best first."""

    ranked: list[Scored]
    policy: Policy

    @property
    def cards(self) -> list[ModelCard]:
        return [s.card for s in self.ranked]


def _project_allows(envelope: RequestEnvelope, card: ModelCard) -> bool:
    access = envelope.model_access
    return access is None or access.allows(card.canonical_id)


class AutoChooser:
    def __init__(
        self,
        catalogue: Catalogue,
        latency: LatencyView | None = None,
        allowed: Callable[[RequestEnvelope, ModelCard], bool] = _project_allows,
    ) -> None:
        """``allowed``: whether the caller may use a model (by default its project's
        ``model_permissions``, which ingress put on the envelope)."""
        self._catalogue = catalogue
        self._latency = latency or _NoLatency()
        self._allowed = allowed

    def choose(
        self,
        envelope: RequestEnvelope,
        features: RequestFeatures,
        policy: Policy,
        config: RoutingConfig,
    ) -> AutoChoice:
        policy = policy.for_task(features.task)
        table = config.quality_table()
        names = policy.candidates if policy.candidates is not None else list(table)
        expected_output = features.max_output_tokens or policy.expected_output_tokens
        eligible: list[tuple[ModelCard, float]] = []
        dropped: dict[str, list[str]] = {}
        for name in names:
            card = self._catalogue.get(name)
            entry = table.get(name)
            if card is None or entry is None:
                continue
            reason = self._constraint(card, entry, features, policy, config, expected_output)
            if reason is None and not self._allowed(envelope, card):
                reason = "not allowed for this project"
            if reason is not None:
                dropped.setdefault(reason, []).append(card.canonical_id)
                continue
            eligible.append((card, entry.for_task(features.task)))
        if not eligible:
            raise NoCandidate(_refusal(dropped, features))
        return AutoChoice(
            ranked=self._rank(eligible, table, features, policy, expected_output), policy=policy
        )

    @staticmethod
    def _constraint(
        card: ModelCard,
        entry: QualityEntry,
        features: RequestFeatures,
        policy: Policy,
        config: RoutingConfig,
        expected_output: int,
    ) -> str | None:
        """Why ``card`` may not serve this request under ``policy``, or None."""
        caps = card.capabilities
        if features.images and not caps.vision:
            return "no image input"
        if features.tools and not caps.tools:
            return "no tool calls"
        if features.json_schema and not caps.response_schema:
            return "no JSON schema output"
        if features.json_mode and not (caps.json_mode or caps.response_schema):
            return "no JSON mode"
        if features.reasoning_effort and not caps.reasoning:
            return "no reasoning effort"
        if features.sampling and entry.fixed_sampling:
            return "refuses temperature or top_p"
        if card.context_window is not None and (
            features.prompt_tokens + expected_output > card.context_window
        ):
            return _TOO_LONG
        if (
            features.max_output_tokens is not None
            and card.max_output_tokens is not None
            and features.max_output_tokens > card.max_output_tokens
        ):
            return _TOO_MANY_OUTPUT
        if policy.providers is not None and card.provider not in policy.providers:
            return "provider not in the policy"
        if card.provider in policy.exclude_providers:
            return "provider excluded by the policy"
        if (
            policy.require_zero_data_retention
            and not config.provider(card.provider).zero_data_retention
        ):
            return "no zero data retention"
        if not card.priced:
            return "price unknown"
        prices = card.prices
        if (
            policy.max_input_price is not None
            and prices.input is not None
            and (prices.input > policy.max_input_price)
        ):
            return "above the policy's price cap"
        if (
            policy.max_output_price is not None
            and prices.output is not None
            and (prices.output > policy.max_output_price)
        ):
            return "above the policy's price cap"
        if entry.for_task(features.task) < policy.min_quality:
            return "below the policy's quality floor"
        return None

    def _rank(
        self,
        eligible: list[tuple[ModelCard, float]],
        table: Mapping[str, QualityEntry],
        features: RequestFeatures,
        policy: Policy,
        expected_output: int,
    ) -> list[Scored]:
        costs = [_cost(card, features.prompt_tokens, expected_output) for card, _ in eligible]
        latencies = [
            self._latency.latency_ms(card.canonical_id) or table[card.canonical_id].latency_ms
            for card, _ in eligible
        ]
        cost_place = _decades_above_least(costs, _COST_DECADES)
        latency_place = _decades_above_least(latencies, _LATENCY_DECADES)
        w = policy.weights
        quality_weight = w.quality * (0.5 + features.difficulty)
        scored = [
            Scored(
                card=card,
                score=quality_weight * quality - w.cost * cost - w.latency * latency,
                quality=quality,
            )
            for (card, quality), cost, latency in zip(
                eligible, cost_place, latency_place, strict=True
            )
        ]
        # Ties (equal scores) go to the higher quality, then the id: the same request ranks the
        # same way on every replica.
        scored.sort(key=lambda s: (-s.score, -s.quality, s.card.canonical_id))
        return scored


def _cost(card: ModelCard, prompt_tokens: int, output_tokens: int) -> float:
    """Estimated USD of this request on ``card`` (a float: it only ranks; nothing is charged)."""
    prices = card.prices
    total = (prices.input or Decimal(0)) * prompt_tokens + (prices.output or Decimal(0)) * (
        output_tokens
    )
    return float(total / _PER_MILLION)


# The spans that count as 1 in the ranking: a model a thousand times dearer, or about thirty
# times slower, than the cheapest (quickest) candidate.
_COST_DECADES = 3.0
_LATENCY_DECADES = 1.5


def _decades_above_least(values: list[float], decades: float) -> list[float]:
    """How many tenfold steps each value lies above the smallest, per ``decades``. A fixed scale,
    so two models rank the same way whichever other candidates are present (the smallest only
    shifts every value alike). Zero prices (free tiers) are floored at a millionth of a dollar,
    zero latencies at a millisecond."""
    logs = [math.log10(max(v, 1e-6)) for v in values]
    least = min(logs)
    return [(v - least) / decades for v in logs]


def _refusal(dropped: dict[str, list[str]], features: RequestFeatures) -> ErrorInfo:
    reasons = "; ".join(f"{why}: {len(ids)}" for why, ids in sorted(dropped.items()))
    if set(dropped) == {_TOO_MANY_OUTPUT}:
        return ErrorInfo(
            code=ErrorCode.INVALID_REQUEST,
            message=(
                f"max_tokens ({features.max_output_tokens}) is above what any model this "
                "policy may use can write."
            ),
            param="max_tokens",
        )
    if set(dropped) <= {_TOO_LONG, _TOO_MANY_OUTPUT}:
        answer = (
            f"the {features.max_output_tokens} tokens max_tokens allows"
            if features.max_output_tokens is not None
            else "its answer"
        )
        return ErrorInfo(
            code=ErrorCode.CONTEXT_LENGTH_EXCEEDED,
            message=(
                f"The prompt (about {features.prompt_tokens} tokens) and {answer} do not fit "
                "the context window of any model this policy may use."
            ),
            param="messages" if features.max_output_tokens is None else "max_tokens",
        )
    return ErrorInfo(
        code=ErrorCode.INVALID_REQUEST,
        message=(
            "No model this routing policy may use can serve the request "
            f"(candidates left out, by reason: {reasons or 'none configured'})."
        ),
        param="model",
    )
