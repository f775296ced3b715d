"""Which names ingress lets through to the router: models, routes and routing policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.catalogue import default_catalogue
from contracts.errors import ErrorCode
from services.common.routing_config import ConfigError, ConfigWatch
from services.ingress.model_names import ModelNames

CATALOGUE = default_catalogue()


@pytest.fixture
def names(tmp_path: Path) -> ModelNames:
    path = tmp_path / "routing.yaml"
    path.write_text(
        "routes:\n  fast:\n    candidates: [{model: gpt-4o-mini}]\n"
        "policies:\n  auto:team:\n    min_quality: 0.7\n"
    )
    return ModelNames(CATALOGUE, ConfigWatch(path, CATALOGUE))


@pytest.mark.parametrize(
    "name", ["auto", "auto:cheap", "auto:balanced", "auto:best", "auto:fast", "auto:team"]
)
def test_policies_pass(names: ModelNames, name: str) -> None:
    assert names.refusal(name) is None


def test_models_and_routes_pass(names: ModelNames) -> None:
    assert names.refusal("gpt-4o-mini") is None
    assert names.refusal("fast") is None


def test_an_unknown_policy_is_a_404_naming_the_known_ones(names: ModelNames) -> None:
    refusal = names.refusal("auto:tean", param="model")
    assert refusal is not None
    assert refusal.code is ErrorCode.MODEL_NOT_FOUND
    assert refusal.param == "model"
    assert "auto:team" in refusal.message
    assert "auto:balanced" in refusal.message


def test_a_route_may_not_take_a_policy_name(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("routes:\n  auto:team:\n    candidates: [{model: gpt-4o-mini}]\n")
    with pytest.raises(ConfigError, match="name routing policies"):
        ConfigWatch(path, CATALOGUE)


def test_policies_are_refused_when_automatic_choice_is_off(tmp_path: Path) -> None:
    off = ModelNames(CATALOGUE, ConfigWatch(None, CATALOGUE), auto_routing=False)
    refusal = off.refusal("auto")
    assert refusal is not None
    assert refusal.code is ErrorCode.INVALID_REQUEST
    assert "switched off" in refusal.message
    assert off.refusal("gpt-4o-mini") is None
