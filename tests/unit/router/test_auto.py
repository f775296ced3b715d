"""Automatic model choice in the planner: hard constraints first, then the policy's ranking.

Assertions are about what a model can do and what it costs (from the catalogue and the quality
table), not about which model name wins, so a table or price update does not break them unless
the choice stops fitting.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.catalogue import ModelCard, default_catalogue
from contracts.envelope import RequestEnvelope
from contracts.errors import ErrorCode
from contracts.features import RequestFeatures, TaskType
from contracts.governance import ModelAccess
from contracts.plan import DispatchPlan, RouteReason
from services.common.model_quality import QualityEntry
from services.common.routing_config import ConfigError, ProviderSettings, RoutingConfig
from services.common.routing_policy import BUILT_IN, Policy, TaskOverride, Weights
from services.router.auto import AutoChooser
from services.router.evaluation.decision import decision_envelope
from services.router.planning import CataloguePlanner, PlanRefused

CATALOGUE = default_catalogue()


def envelope(model: str = "auto", **features: object) -> RequestEnvelope:
    found = RequestFeatures.model_validate({"prompt_tokens": 50, **features})
    return decision_envelope(model, found)


class Latencies:
    def __init__(self, observed: dict[str, float]) -> None:
        self.observed = observed

    def latency_ms(self, canonical_id: str) -> float | None:
        return self.observed.get(canonical_id)


def plan_for(
    env: RequestEnvelope,
    config: RoutingConfig | None = None,
    *,
    served: set[str] | None = None,
    latencies: dict[str, float] | None = None,
) -> DispatchPlan:
    resolved = (config or RoutingConfig()).resolved(CATALOGUE)
    chooser = AutoChooser(CATALOGUE, Latencies(latencies or {}))
    planner = CataloguePlanner(
        CATALOGUE,
        lambda: resolved,
        rng=random.Random(1),
        served=(lambda p: p in served) if served is not None else (lambda p: True),
        chooser=chooser,
    )
    return planner.plan(env)


def card(plan: DispatchPlan, i: int = 0) -> ModelCard:
    found = CATALOGUE.get(plan.targets[i].canonical_id)
    assert found is not None
    return found


def quality(canonical_id: str, task: TaskType) -> float:
    return RoutingConfig().quality_table()[canonical_id].for_task(task)


def blended_price(c: ModelCard) -> float:
    assert c.prices.input is not None
    assert c.prices.output is not None
    return float(c.prices.input + c.prices.output)


def test_auto_is_balanced_and_explains_itself() -> None:
    plan = plan_for(envelope("auto", task="code", difficulty=0.72))
    assert plan.reason is RouteReason.AUTO
    assert plan.policy == "auto:balanced"
    assert plan.reason_detail.startswith("auto:balanced task=code difficulty=0.72 -> ")
    assert plan.reason_detail.endswith(plan.targets[0].canonical_id)
    # The first choice and its fallbacks (two by default), each a different model.
    assert len(plan.targets) == 1 + BUILT_IN["auto:balanced"].fallbacks
    assert len({t.canonical_id for t in plan.targets}) == len(plan.targets)


def test_cheap_picks_a_cheaper_model_than_best() -> None:
    cheap = card(plan_for(envelope("auto:cheap", task="chat", difficulty=0.2)))
    best = card(plan_for(envelope("auto:best", task="chat", difficulty=0.2)))
    assert blended_price(cheap) < blended_price(best)
    assert quality(best.canonical_id, TaskType.CHAT) > quality(cheap.canonical_id, TaskType.CHAT)


def test_a_harder_prompt_buys_more_quality() -> None:
    easy = card(plan_for(envelope(task="reasoning", difficulty=0.05)))
    hard = card(plan_for(envelope(task="reasoning", difficulty=0.95)))
    assert quality(hard.canonical_id, TaskType.REASONING) > quality(
        easy.canonical_id, TaskType.REASONING
    )


def test_code_goes_to_a_model_rated_for_code() -> None:
    chosen = card(plan_for(envelope("auto:best", task="code", difficulty=0.8)))
    table = RoutingConfig().quality_table()
    best_code = max(entry.for_task(TaskType.CODE) for entry in table.values())
    assert quality(chosen.canonical_id, TaskType.CODE) == pytest.approx(best_code)


@pytest.mark.parametrize(
    ("features", "capability"),
    [
        ({"images": 1, "task": "vision"}, "vision"),
        ({"tools": 2, "task": "tool_use"}, "tools"),
        ({"json_schema": True}, "response_schema"),
    ],
)
def test_needs_are_hard_constraints(features: dict[str, object], capability: str) -> None:
    plan = plan_for(envelope("auto:cheap", **features))
    for i in range(len(plan.targets)):
        assert getattr(card(plan, i).capabilities, capability)


def test_a_long_prompt_goes_to_a_window_that_holds_it_and_the_answer() -> None:
    plan = plan_for(envelope("auto:cheap", prompt_tokens=300_000, task="summarisation"))
    for i in range(len(plan.targets)):
        window = card(plan, i).context_window
        assert window is not None
        assert window >= 300_000 + 1024


def test_max_tokens_counts_against_the_window() -> None:
    plan = plan_for(envelope("auto:cheap", prompt_tokens=100_000, max_output_tokens=120_000))
    for i in range(len(plan.targets)):
        window = card(plan, i).context_window
        assert window is not None
        assert window >= 220_000


def test_nothing_fits_is_a_context_error() -> None:
    with pytest.raises(PlanRefused) as refused:
        plan_for(envelope(prompt_tokens=5_000_000))
    assert refused.value.info.code is ErrorCode.CONTEXT_LENGTH_EXCEEDED


def test_policy_constraints_providers_prices_quality_floor() -> None:
    config = RoutingConfig(
        policies={
            "auto:eu": Policy(
                providers=["mistral", "gemini"],
                max_output_price=None,
                min_quality=0.7,
            ),
            "auto:thrifty": Policy(max_input_price=Decimal("0.5"), max_output_price=Decimal(2)),
        }
    )
    eu = plan_for(envelope("auto:eu"), config)
    assert {t.provider for t in eu.targets} <= {"mistral", "gemini"}
    for i in range(len(eu.targets)):
        assert quality(eu.targets[i].canonical_id, TaskType.CHAT) >= 0.7
    thrifty = plan_for(envelope("auto:thrifty", task="reasoning", difficulty=1.0), config)
    for i in range(len(thrifty.targets)):
        prices = card(thrifty, i).prices
        assert prices.input is not None
        assert prices.input <= 0.5
        assert prices.output is not None
        assert prices.output <= 2


def test_zero_data_retention_keeps_to_providers_marked_so() -> None:
    config = RoutingConfig(
        providers={"anthropic": ProviderSettings(zero_data_retention=True)},
        policies={"auto:private": Policy(require_zero_data_retention=True)},
    )
    plan = plan_for(envelope("auto:private"), config)
    assert {t.provider for t in plan.targets} == {"anthropic"}


def test_per_task_override_replaces_candidates() -> None:
    config = RoutingConfig(
        policies={
            "auto:team": Policy(
                candidates=["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"],
                tasks={
                    TaskType.CODE: TaskOverride(candidates=["mistral/codestral-latest"]),
                },
            )
        }
    )
    assert plan_for(envelope("auto:team", task="code"), config).targets[0].canonical_id == (
        "mistral/codestral-latest"
    )
    chat = plan_for(envelope("auto:team", task="chat"), config)
    assert {t.canonical_id for t in chat.targets} <= {
        "openai/gpt-4o-mini",
        "anthropic/claude-haiku-4-5",
    }


def test_fast_follows_observed_latency() -> None:
    fast_policy = RoutingConfig(
        policies={
            "auto:quick": Policy(
                candidates=["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"],
                weights=Weights(quality=0, cost=0, latency=1),
            )
        }
    )
    slow_openai = {"openai/gpt-4o-mini": 5000.0, "anthropic/claude-haiku-4-5": 300.0}
    slow_anthropic = {"openai/gpt-4o-mini": 300.0, "anthropic/claude-haiku-4-5": 5000.0}
    first = plan_for(envelope("auto:quick"), fast_policy, latencies=slow_openai)
    second = plan_for(envelope("auto:quick"), fast_policy, latencies=slow_anthropic)
    assert first.targets[0].canonical_id == "anthropic/claude-haiku-4-5"
    assert second.targets[0].canonical_id == "openai/gpt-4o-mini"


def test_providers_without_workers_are_passed_over() -> None:
    everyone = plan_for(envelope("auto:best", task="code"))
    first = everyone.targets[0]
    served = {"gemini", "deepseek"} - {first.provider}
    plan = plan_for(envelope("auto:best", task="code"), served=served)
    assert {t.provider for t in plan.targets} <= served
    assert f"{first.canonical_id}: no worker" in plan.passed_over
    # Only what ranked above the last target taken is named, not every candidate below it.
    ranked_above = len(plan.passed_over) + len(plan.targets)
    assert ranked_above <= len(RoutingConfig().quality_table())
    assert all(entry.endswith(": no worker") for entry in plan.passed_over)


def test_an_auto_plan_lists_only_what_ranked_above_its_last_target() -> None:
    plan = plan_for(envelope("auto:balanced", task="chat"))
    assert plan.passed_over == []
    assert len(plan.targets) == 1 + BUILT_IN["auto:balanced"].fallbacks


def test_unknown_policy_and_missing_features_are_refused() -> None:
    with pytest.raises(PlanRefused) as unknown:
        plan_for(envelope("auto:nope"))
    assert unknown.value.info.code is ErrorCode.MODEL_NOT_FOUND
    assert "auto:balanced" in unknown.value.info.message
    bare = envelope("auto").model_copy(update={"features": None})
    with pytest.raises(PlanRefused):
        plan_for(bare)


def test_an_impossible_policy_says_why() -> None:
    config = RoutingConfig(policies={"auto:none": Policy(min_quality=1.0)})
    with pytest.raises(PlanRefused) as refused:
        plan_for(envelope("auto:none"), config)
    assert refused.value.info.code is ErrorCode.INVALID_REQUEST
    assert "below the policy's quality floor" in refused.value.info.message


@pytest.mark.parametrize(
    ("policies", "quality", "complaint"),
    [
        ({"cheapest": {}}, {}, "a policy's name is auto:<name>"),
        ({"auto:x": {"candidates": ["no-such-model"]}}, {}, "unknown model"),
        ({"auto:x": {"candidates": ["openai/gpt-3.5-turbo"]}}, {}, "no quality entry"),
        ({"auto:x": {"providers": ["nowhere"]}}, {}, "unknown provider"),
        ({"auto:x": {"weights": {"quality": 0, "cost": 0, "latency": 0}}}, {}, "weight"),
        ({"auto:x": {"min_quality": 2}}, {}, "min_quality"),
        ({"auto:x": {"tasks": {"poetry": {}}}}, {}, "tasks"),
        ({}, {"not-a-model": {"quality": 0.5}}, "unknown model"),
    ],
)
def test_a_bad_policy_is_refused_with_a_clear_message(
    policies: dict[str, object], quality: dict[str, object], complaint: str
) -> None:
    with pytest.raises((ConfigError, ValidationError)) as refused:
        RoutingConfig.model_validate({"policies": policies, "quality": quality}).resolved(CATALOGUE)
    assert complaint in str(refused.value)


def test_quality_overrides_add_models() -> None:
    config = RoutingConfig.model_validate(
        {
            "quality": {"gpt-3.5-turbo": {"quality": 0.99}},
            "policies": {"auto:legacy": {"candidates": ["gpt-3.5-turbo"]}},
        }
    ).resolved(CATALOGUE)
    assert config.quality_table()["openai/gpt-3.5-turbo"] == QualityEntry(quality=0.99)
    assert plan_for(envelope("auto:legacy"), config).targets[0].model == "gpt-3.5-turbo"


def test_the_router_refuses_to_start_on_a_bad_policy(tmp_path: Path) -> None:
    config = tmp_path / "routing.yaml"
    config.write_text("policies:\n  auto:x:\n    weights: {quality: 1, speed: 2}\n")
    env = {**os.environ, "SWITCHYARD_ROUTING_CONFIG": str(config)}
    # No Kafka is needed: the config is read before anything is connected.
    done = subprocess.run(
        [sys.executable, "-c", "from services.cli import main; main()", "router"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "routing config is refused" in done.stderr
    assert "policies.auto:x.weights.speed" in done.stderr


def test_a_set_temperature_never_goes_to_a_model_that_refuses_it() -> None:
    table = RoutingConfig().quality_table()
    fixed = {m for m, entry in table.items() if entry.fixed_sampling}
    assert fixed  # the shipped table marks some
    best_reasoning = plan_for(envelope("auto:best", task="reasoning", difficulty=0.9))
    assert best_reasoning.targets[0].canonical_id in fixed  # or the check below proves nothing
    plan = plan_for(envelope("auto:best", task="reasoning", difficulty=0.9, sampling=True))
    assert not {t.canonical_id for t in plan.targets} & fixed


def test_reasoning_effort_needs_a_reasoning_model() -> None:
    plan = plan_for(envelope("auto:cheap", reasoning_effort=True))
    for i in range(len(plan.targets)):
        assert card(plan, i).capabilities.reasoning


def test_a_max_tokens_no_window_holds_is_blamed_on_max_tokens() -> None:
    with pytest.raises(PlanRefused) as refused:
        plan_for(envelope(max_output_tokens=10_000_000))
    assert refused.value.info.code is ErrorCode.CONTEXT_LENGTH_EXCEEDED
    assert refused.value.info.param == "max_tokens"
    assert "10000000" in refused.value.info.message


def test_a_projects_model_permissions_hold_in_every_kind_of_plan() -> None:
    only_haiku = ModelAccess(mode="allow_list", model_ids=["anthropic/claude-haiku-4-5"])
    auto = plan_for(envelope("auto:best").model_copy(update={"model_access": only_haiku}))
    assert [t.canonical_id for t in auto.targets] == ["anthropic/claude-haiku-4-5"]

    config = RoutingConfig.model_validate(
        {"routes": {"team": {"candidates": [{"model": "gpt-4o-mini"}, {"model": "gpt-4o"}]}}}
    )
    no_mini = ModelAccess(mode="deny_list", model_ids=["openai/gpt-4o-mini"])
    routed = envelope("team").model_copy(update={"model_access": no_mini, "features": None})
    plan = plan_for(routed, config)
    assert [t.canonical_id for t in plan.targets] == ["openai/gpt-4o"]
    assert "openai/gpt-4o-mini: not allowed" in plan.passed_over

    nothing = ModelAccess(mode="allow_list", model_ids=[])
    with pytest.raises(PlanRefused) as refused:
        plan_for(routed.model_copy(update={"model_access": nothing}), config)
    assert refused.value.info.code is ErrorCode.PERMISSION_DENIED
