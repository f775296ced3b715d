"""Turning a request into a dispatch plan: an ordered list of targets, primary first.

Where the list comes from, first match wins:

1. a routing policy (``model: "auto"``, ``auto:cheap``...): the candidates ranked for this
   request's task, difficulty, size and needs (``services.router.auto``);
2. the request's own ``models`` list (OpenRouter's convention), in the caller's order;
3. a named route of the routing config: its candidates in an order drawn by weight;
4. the model the caller named, followed by that model's fallbacks from the routing config.

Then targets are passed over, without a vendor call, when the prompt cannot fit their context
window or their circuit is open. What is left is the plan; when nothing is left the request is
refused at once (400 when no window fits the prompt, 503 with ``retry-after`` when every circuit
is open), instead of waiting for failures.

"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from contracts._base import now_ms
from contracts.catalogue import Catalogue, ModelCard, UnknownModel
from contracts.envelope import RequestEnvelope
from contracts.errors import ErrorCode, ErrorInfo
from contracts.plan import DispatchPlan, RouteReason, Target
from services.common.circuits import provider_circuit
from services.common.routing_config import EMPTY, Route, RoutingConfig
from services.common.routing_policy import policy_name
from services.router.auto import AutoChooser, NoCandidate


class PlanRefused(Exception):
    """No plan can serve this request; ``info`` says why, for the caller."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


class Planner(Protocol):
    def plan(self, envelope: RequestEnvelope) -> DispatchPlan: ...


class CircuitView(Protocol):
    """What the planner needs of the shared circuit state (``services.common.circuits``)."""

    def blocked(self, key: str) -> int | None:
        """When an open circuit for ``key`` lets calls through again (epoch ms); None if open."""
        ...


class _NoCircuits:
    def blocked(self, key: str) -> int | None:
        return None


@dataclass(frozen=True)
class _Candidates:
    cards: list[ModelCard]
    reason: RouteReason
    detail: str
    policy: str | None = None
    # At most this many targets (a policy's first choice and its fallbacks); None: all.
    limit: int | None = None


class CataloguePlanner:
    def __init__(
        self,
        catalogue: Catalogue,
        config: Callable[[], RoutingConfig] = lambda: EMPTY,
        circuits: CircuitView | None = None,
        rng: random.Random | None = None,
        served: Callable[[str], bool] = lambda provider: True,
        chooser: AutoChooser | None = None,
    ) -> None:
        """``served``: whether a provider has a live worker (services.common.provider_registry);
        a plan never waits on a topic nobody consumes. ``chooser``: automatic model choice."""
        self._chooser = chooser or AutoChooser(catalogue)
        self._catalogue = catalogue
        self._config = config
        self._circuits = circuits or _NoCircuits()
        self._rng = rng or random.Random()
        self._served = served

    def plan(self, envelope: RequestEnvelope) -> DispatchPlan:
        candidates = self._candidates(envelope, self._config())
        targets, passed_over = self._usable(candidates.cards, envelope, limit=candidates.limit)
        detail = candidates.detail
        if candidates.reason is RouteReason.AUTO:
            detail += f" -> {targets[0].canonical_id}"
        if passed_over:
            detail += "; passed over " + ", ".join(passed_over)
        return DispatchPlan(
            request_id=envelope.request_id,
            envelope=envelope,
            targets=targets,
            reason=candidates.reason,
            reason_detail=detail,
            policy=candidates.policy,
            planned_at_ms=now_ms(),
            passed_over=passed_over,
        )

    def _candidates(self, envelope: RequestEnvelope, config: RoutingConfig) -> _Candidates:
        auto = policy_name(envelope.requested_model)
        if auto is not None:
            return self._auto(envelope, auto, config)
        if len(envelope.requested_models) > 1:
            # A route named in the list stands for its candidates, in their weighted order.
            listed: list[ModelCard] = []
            for i, listed_name in enumerate(envelope.requested_models):
                listed_route = config.routes.get(listed_name)
                names = self._weighted_order(listed_route) if listed_route else [listed_name]
                listed.extend(self._card(n, f"models[{i}]") for n in names)
            return _Candidates(_unique(listed), RouteReason.EXPLICIT, "fallbacks from the request")
        name = envelope.requested_model
        route = config.routes.get(name)
        if route is not None:
            cards = [self._card(model, "model") for model in self._weighted_order(route)]
            return _Candidates(_unique(cards), RouteReason.ROUTE, f"route {name}")
        try:
            resolution = self._catalogue.resolve(name)
        except UnknownModel as exc:
            raise PlanRefused(exc.error_info()) from exc
        card = resolution.card
        defaults = [self._card(m, "model") for m in config.fallbacks.get(card.canonical_id, [])]
        detail = f"{name} -> {card.canonical_id}"
        if defaults:
            detail += " with configured fallbacks"
        return _Candidates(_unique([card, *defaults]), resolution.how, detail)

    def _auto(self, envelope: RequestEnvelope, name: str, config: RoutingConfig) -> _Candidates:
        policy = config.policy(name)
        if policy is None:
            known = ", ".join(config.policy_names())
            raise PlanRefused(
                ErrorInfo(
                    code=ErrorCode.MODEL_NOT_FOUND,
                    message=f"The routing policy '{name}' does not exist. Known: {known}.",
                    param="model",
                )
            )
        features = envelope.features
        if features is None:
            # Ingress computes them for every policy name; an envelope without them was
            # written by something else, and choosing blind would be a guess.
            raise PlanRefused(
                ErrorInfo(
                    code=ErrorCode.INVALID_REQUEST,
                    message="Automatic model choice needs the prompt's features; none came.",
                )
            )
        try:
            choice = self._chooser.choose(envelope, features, policy, config)
        except NoCandidate as exc:
            raise PlanRefused(exc.info) from exc
        return _Candidates(
            choice.cards,
            RouteReason.AUTO,
            f"{name} task={features.task} difficulty={features.difficulty:.2f}",
            policy=name,
            limit=1 + choice.policy.fallbacks,
        )

    def _card(self, name: str, param: str) -> ModelCard:
        try:
            return self._catalogue.resolve(name).card
        except UnknownModel as exc:
            info = exc.error_info().model_copy(update={"param": param})
            raise PlanRefused(info) from exc

    def _weighted_order(self, route: Route) -> list[str]:
        """Every candidate once, in a random order where a candidate's chance to come before
        another is proportional to its weight (weighted sampling without replacement)."""
        # Efraimidis-Spirakis: sort by u^(1/w); one pass, no rejection loop.
        keyed = [(self._rng.random() ** (1.0 / c.weight), c.model) for c in route.candidates]
        return [model for _, model in sorted(keyed, reverse=True)]

    def _usable(
        self, cards: Sequence[ModelCard], envelope: RequestEnvelope, *, limit: int | None = None
    ) -> tuple[list[Target], list[str]]:
        """The cards that can be tried, in order, up to ``limit``; and the ones passed over on
        the way (those ranked below the last target taken are not looked at)."""
        targets: list[Target] = []
        passed_over: list[str] = []
        too_small: list[ModelCard] = []
        reopen_at: list[int] = []
        unserved: list[ModelCard] = []
        forbidden: list[ModelCard] = []
        prompt = envelope.prompt_tokens_estimate
        access = envelope.model_access
        for card in cards:
            if limit is not None and len(targets) >= limit:
                break
            if access is not None and not access.allows(card.canonical_id):
                forbidden.append(card)
                passed_over.append(f"{card.canonical_id}: not allowed")
                continue
            if (
                prompt is not None
                and card.context_window is not None
                and prompt > card.context_window
            ):
                too_small.append(card)
                passed_over.append(f"{card.canonical_id}: context window")
                continue
            if not self._served(card.provider):
                unserved.append(card)
                passed_over.append(f"{card.canonical_id}: no worker")
                continue
            blocked = self._circuits.blocked(card.canonical_id) or self._circuits.blocked(
                provider_circuit(card.provider)
            )
            if blocked is not None:
                reopen_at.append(blocked)
                passed_over.append(f"{card.canonical_id}: circuit open")
                continue
            targets.append(
                Target(provider=card.provider, model=card.model, canonical_id=card.canonical_id)
            )
        if targets:
            return targets, passed_over
        if not (unserved or reopen_at or too_small):
            # Only models the caller's project may not use (its model_permissions).
            raise PlanRefused(
                ErrorInfo(
                    code=ErrorCode.PERMISSION_DENIED,
                    message=(
                        "This project may not use any model this request names "
                        f"({', '.join(c.canonical_id for c in forbidden)})."
                    ),
                    param="model",
                )
            )
        if (
            unserved
            and not reopen_at
            and len(unserved) + len(too_small) + len(forbidden) == len(cards)
        ):
            raise PlanRefused(
                ErrorInfo(
                    code=ErrorCode.UNAVAILABLE,
                    message=(
                        "No worker serves "
                        f"{', '.join(sorted({c.provider for c in unserved}))} right now; "
                        "try again shortly."
                    ),
                    retryable=True,
                    retry_after_s=_NO_WORKER_RETRY_S,
                )
            )
        if reopen_at:
            wait_s = max(min(reopen_at) - now_ms(), 0) / 1000
            raise PlanRefused(
                ErrorInfo(
                    code=ErrorCode.UNAVAILABLE,
                    message=(
                        "Every model that could serve this request is failing right now "
                        f"({', '.join(c.canonical_id for c in cards)}); try again shortly."
                    ),
                    retryable=True,
                    retry_after_s=max(round(wait_s, 1), 1.0),
                )
            )
        largest = max(c.context_window or 0 for c in too_small)
        raise PlanRefused(
            ErrorInfo(
                code=ErrorCode.CONTEXT_LENGTH_EXCEEDED,
                message=(
                    f"The prompt (about {prompt} tokens) does not fit the context window of any "
                    f"model this request may use (the largest holds {largest})."
                ),
                param="messages",
            )
        )


# A worker that starts announces itself within seconds.
_NO_WORKER_RETRY_S = 5.0


def _unique(cards: list[ModelCard]) -> list[ModelCard]:
    seen: set[str] = set()
    unique: list[ModelCard] = []
    for card in cards:
        if card.canonical_id not in seen:
            seen.add(card.canonical_id)
            unique.append(card)
    return unique
