"""Which model names ingress accepts: catalogue models, the routing config's named routes, and
routing policies (``auto``, ``auto:<name>``).

Checked at the door so an unknown name is a 404 at once, with suggestions, rather than a round
trip through Kafka; the router resolves the names again, for real, when it plans.
"""

from __future__ import annotations

import contextlib

from contracts.catalogue import Catalogue, ModelCard, UnknownModel
from contracts.errors import ErrorCode, ErrorInfo
from contracts.governance import ModelAccess
from services.common.routing_config import ConfigWatch
from services.common.routing_policy import policy_name


class ModelNames:
    def __init__(
        self, catalogue: Catalogue, config: ConfigWatch, *, auto_routing: bool = True
    ) -> None:
        self.catalogue = catalogue
        self.config = config
        self.auto_routing = auto_routing

    def refusal(
        self, name: str, *, param: str = "model", access: ModelAccess | None = None
    ) -> ErrorInfo | None:
        """Why ``name`` cannot be served, or None when it names a model, a route or a policy
        (and, for a model, one ``access`` allows; routes and policies are checked model by
        model when the router plans)."""
        config = self.config()
        policy = policy_name(name)
        if policy is not None and not self.auto_routing:
            return ErrorInfo(
                code=ErrorCode.INVALID_REQUEST,
                message=(
                    "Automatic model choice is switched off on this deployment; name a model."
                ),
                param=param,
            )
        if policy is not None:
            if config.policy(policy) is not None:
                return None
            return ErrorInfo(
                code=ErrorCode.MODEL_NOT_FOUND,
                message=(
                    f"The routing policy '{name}' does not exist. "
                    f"Known: auto, {', '.join(config.policy_names())}."
                ),
                param=param,
            )
        if name in config.routes:
            return None
        try:
            card = self.catalogue.resolve(name).card
        except UnknownModel as exc:
            return exc.error_info().model_copy(update={"param": param})
        if access is not None and not access.allows(card.canonical_id):
            return ErrorInfo(
                code=ErrorCode.PERMISSION_DENIED,
                message=f"This project may not use the model '{card.canonical_id}'.",
                param=param,
            )
        return None

    def reachable(self, name: str, access: ModelAccess | None = None) -> list[ModelCard]:
        """Every model a request naming ``name`` may end up answered by: the model and its
        configured fallbacks, a route's candidates, or a policy's (every rated model when the
        policy names none). What admission prices a request's hold at: the dearest of them."""
        config = self.config()
        policy = policy_name(name)
        names: list[str] = []
        if policy is not None:
            found = config.policy(policy)
            if found is not None:
                if found.candidates is None:
                    names = list(config.quality_table())
                for candidates in [found.candidates, *(o.candidates for o in found.tasks.values())]:
                    names += candidates or []
        elif name in config.routes:
            names = [c.model for c in config.routes[name].candidates]
        else:
            names = [name]
        cards: dict[str, ModelCard] = {}
        for each in names:
            try:
                card = self.catalogue.resolve(each).card
            except UnknownModel:
                continue
            cards[card.canonical_id] = card
            if policy is None:
                for fallback in config.fallbacks.get(card.canonical_id, []):
                    with contextlib.suppress(UnknownModel):
                        spare = self.catalogue.resolve(fallback).card
                        cards[spare.canonical_id] = spare
        return [c for c in cards.values() if access is None or access.allows(c.canonical_id)]
