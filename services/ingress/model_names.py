"""Which model names ingress accepts: catalogue models and the routing config's named routes.

Checked at the door so an unknown name is a 404 at once, with suggestions, rather than a round
trip through Kafka; the router resolves the names again, for real, when it plans.
"""

from __future__ import annotations

from contracts.catalogue import Catalogue, UnknownModel
from contracts.errors import ErrorInfo
from services.common.routing_config import ConfigWatch


class ModelNames:
    def __init__(self, catalogue: Catalogue, config: ConfigWatch) -> None:
        self.catalogue = catalogue
        self.config = config

    def refusal(self, name: str, *, param: str = "model") -> ErrorInfo | None:
        """Why ``name`` cannot be served, or None when it names a model or a route."""
        if name in self.config().routes:
            return None
        try:
            self.catalogue.resolve(name)
        except UnknownModel as exc:
            return exc.error_info().model_copy(update={"param": param})
        return None
