"""The routing config: validated whole against the catalogue, reloaded live, and a bad edit
never replaces a good config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from contracts.catalogue import default_catalogue
from services.common.routing_config import ConfigError, ConfigWatch, RoutingConfig, load_config

CATALOGUE = default_catalogue()
REPO = Path(__file__).resolve().parents[3]


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    # Reloads compare modification time and size; make sure a rewrite is seen as a change.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.mark.parametrize("shipped", ["deploy/routing/routing.yaml", "tests/routing.test.yaml"])
def test_the_shipped_configs_are_valid(shipped: str) -> None:
    load_config(REPO / shipped, CATALOGUE)


def test_model_names_are_resolved_to_canonical_ids(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    write(
        path,
        "routes:\n  cheap:\n    candidates:\n      - model: gpt-4o-mini\n"
        "fallbacks:\n  gpt-4o: [claude-sonnet-4-5]\n",
    )
    config = load_config(path, CATALOGUE)
    assert config.routes["cheap"].candidates[0].model == "openai/gpt-4o-mini"
    assert config.fallbacks == {"openai/gpt-4o": ["anthropic/claude-sonnet-4-5"]}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("routes:\n  r:\n    candidates:\n      - model: gpt-9-ultra\n", "gpt-9-ultra"),
        ("routes:\n  gpt-4o:\n    candidates:\n      - model: gpt-4o-mini\n", "catalogue model"),
        ("routes:\n  r:\n    candidates: []\n", "routes.r.candidates"),
        ("routes:\n  r:\n    candidates:\n      - {model: gpt-4o, weight: 0}\n", "weight"),
        ("circuit:\n  cooldown: 5\n", "circuit.cooldown"),  # a misspelt field
        ("providers:\n  acme:\n    rpm: 10\n", "unknown provider"),
        ("providers:\n  openai:\n    rpm: -1\n", "providers.openai.rpm"),
        ("providers:\n  openai:\n    batch_share: 1.5\n", "batch_share"),
        ("routes: [\n", "routing.yaml"),  # not YAML
    ],
)
def test_a_bad_config_is_refused_naming_the_problem(
    tmp_path: Path, text: str, complaint: str
) -> None:
    path = tmp_path / "routing.yaml"
    write(path, text)
    with pytest.raises(ConfigError, match=complaint.replace(".", r"\.")):
        load_config(path, CATALOGUE)


def test_a_change_is_picked_up_and_a_bad_edit_keeps_the_last_good_config(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    write(path, "routes:\n  r:\n    candidates:\n      - model: gpt-4o-mini\n")
    seen: list[object] = []
    watch = ConfigWatch(path, CATALOGUE, on_change=seen.append)
    assert list(watch().routes) == ["r"]
    assert watch.check() is False  # unchanged

    write(path, "routes:\n  s:\n    candidates:\n      - model: gpt-4o\n")
    assert watch.check() is True
    assert list(watch().routes) == ["s"]
    assert len(seen) == 1

    write(path, "routes:\n  s:\n    candidates:\n      - model: not-a-model\n")
    assert watch.check() is False
    assert list(watch().routes) == ["s"]
    assert watch.last_error is not None
    assert "not-a-model" in watch.last_error


def test_a_bad_file_at_start_stops_the_service(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    write(path, "circuit:\n  failures: 0\n")
    with pytest.raises(ConfigError):
        ConfigWatch(path, CATALOGUE)


def test_no_file_means_no_routes_and_no_limits() -> None:
    watch = ConfigWatch(None, CATALOGUE)
    assert watch().routes == {}
    assert watch().provider("openai").rpm is None


def test_a_providers_own_circuit_opens_on_two_failed_checks_in_a_row() -> None:
    config = RoutingConfig.model_validate(
        {
            "circuit": {"failures": 5, "window_s": 30},
            "providers": {"openai": {"health_check": {"interval_s": 30}}},
        }
    )
    own = config.circuit_policy("openai/*")
    assert (own.failures, own.window_s) == (2, 75.0)
    model = config.circuit_policy("openai/gpt-4o")
    assert (model.failures, model.window_s) == (5, 30.0)


def test_a_bad_policy_is_refused_at_start_and_on_reload(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    write(path, "policies:\n  auto:team:\n    candidates: [gpt-4o-mini]\n    min_quality: 0.5\n")
    watch = ConfigWatch(path, CATALOGUE)
    assert watch().policy("auto:team") is not None

    write(path, "policies:\n  auto:team:\n    candidates: [gpt-4o-mini]\n    min_quality: 5\n")
    assert watch.check() is False
    assert watch.last_error is not None
    assert "policies.auto:team.min_quality" in watch.last_error
    kept = watch().policy("auto:team")
    assert kept is not None
    assert kept.min_quality == 0.5

    write(path, "policies:\n  team:\n    min_quality: 0.5\n")
    with pytest.raises(ConfigError, match="a policy's name is auto:<name>"):
        ConfigWatch(path, CATALOGUE)
