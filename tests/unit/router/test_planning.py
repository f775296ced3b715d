"""Planning: where a request's fallback list comes from, and what is passed over before any
vendor call (context windows, open circuits)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from contracts._base import now_ms
from contracts.catalogue import default_catalogue
from contracts.envelope import ClientProtocol, Mode, RequestEnvelope
from contracts.errors import ErrorCode
from contracts.plan import RouteReason, Target
from contracts.sealing import SealedBody
from services.common.routing_config import Candidate, Route, RoutingConfig
from services.router.planning import CataloguePlanner, PlanRefused

CATALOGUE = default_catalogue()


def envelope(
    model: str = "gpt-4o-mini", *, models: list[str] | None = None, prompt_tokens: int | None = 10
) -> RequestEnvelope:
    return RequestEnvelope(
        request_id="r1",
        tenant="t",
        key_id="k",
        client_protocol=ClientProtocol.OPENAI_CHAT,
        mode=Mode.SYNC,
        requested_model=model,
        requested_models=models or [],
        prompt_tokens_estimate=prompt_tokens,
        sealed_body=SealedBody(nonce="AAAA", ciphertext="AAAA"),
        created_at_ms=now_ms(),
        deadline_ms=now_ms() + 60_000,
    )


class OpenCircuits:
    def __init__(self, *keys: str) -> None:
        self.keys = set(keys)
        self.retry_at = now_ms() + 4_000

    def blocked(self, key: str) -> int | None:
        return self.retry_at if key in self.keys else None


def planner(
    config: RoutingConfig | None = None, circuits: OpenCircuits | None = None
) -> CataloguePlanner:
    resolved = (config or RoutingConfig()).resolved(CATALOGUE)
    return CataloguePlanner(CATALOGUE, lambda: resolved, circuits, random.Random(7))


def ids(targets: list[Target]) -> list[str]:
    return [t.canonical_id for t in targets]


def test_the_requests_own_list_comes_first_in_the_callers_order() -> None:
    config = RoutingConfig(fallbacks={"openai/gpt-4o-mini": ["gemini/gemini-2.5-flash"]})
    plan = planner(config).plan(
        envelope(models=["gpt-4o-mini", "anthropic/claude-haiku-4-5", "gpt-4o-mini"])
    )
    assert ids(plan.targets) == ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]


def test_a_named_route_orders_its_candidates_by_weight() -> None:
    route = Route(
        candidates=[
            Candidate(model="openai/gpt-4o-mini", weight=3),
            Candidate(model="anthropic/claude-haiku-4-5", weight=1),
        ]
    )
    routing = planner(RoutingConfig(routes={"fast-chat": route}))
    firsts = Counter(routing.plan(envelope("fast-chat")).primary.canonical_id for _ in range(2000))
    assert set(firsts) == {"openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"}
    # Weight 3 against 1: first about three times as often (0.75 +- a generous margin).
    assert 0.70 < firsts["openai/gpt-4o-mini"] / 2000 < 0.80
    plan = routing.plan(envelope("fast-chat"))
    assert plan.reason is RouteReason.ROUTE
    assert len(plan.targets) == 2


def test_a_model_without_a_list_gets_its_configured_fallbacks() -> None:
    config = RoutingConfig(fallbacks={"gpt-4o": ["claude-sonnet-4-5"]})
    plan = planner(config).plan(envelope("gpt-4o"))
    assert ids(plan.targets) == ["openai/gpt-4o", "anthropic/claude-sonnet-4-5"]
    assert ids(planner().plan(envelope("gpt-4o")).targets) == ["openai/gpt-4o"]


def test_a_prompt_too_long_for_a_window_passes_that_model_over() -> None:
    small = CATALOGUE.get("moonshot/moonshot-v1-8k")
    assert small is not None
    assert small.context_window == 8192
    plan = planner().plan(
        envelope(models=["moonshot/moonshot-v1-8k", "moonshot/kimi-k3"], prompt_tokens=20_000)
    )
    assert ids(plan.targets) == ["moonshot/kimi-k3"]
    assert plan.passed_over == ["moonshot/moonshot-v1-8k: context window"]


def test_a_prompt_no_window_fits_is_refused_as_too_long() -> None:
    with pytest.raises(PlanRefused) as refused:
        planner().plan(envelope("moonshot/moonshot-v1-8k", prompt_tokens=9_000))
    assert refused.value.info.code is ErrorCode.CONTEXT_LENGTH_EXCEEDED


def test_open_circuits_are_passed_over_and_all_open_is_a_503_with_retry_after() -> None:
    circuits = OpenCircuits("openai/gpt-4o-mini")
    plan = planner(circuits=circuits).plan(
        envelope(models=["gpt-4o-mini", "anthropic/claude-haiku-4-5"])
    )
    assert ids(plan.targets) == ["anthropic/claude-haiku-4-5"]
    with pytest.raises(PlanRefused) as refused:
        planner(circuits=circuits).plan(envelope("gpt-4o-mini"))
    info = refused.value.info
    assert info.code is ErrorCode.UNAVAILABLE
    assert info.retryable
    assert info.retry_after_s is not None
    assert 1.0 <= info.retry_after_s <= 4.0


def test_an_unknown_name_in_the_list_is_refused_naming_its_position() -> None:
    with pytest.raises(PlanRefused) as refused:
        planner().plan(envelope(models=["gpt-4o-mini", "no-such-model"]))
    assert refused.value.info.code is ErrorCode.MODEL_NOT_FOUND
    assert refused.value.info.param == "models[1]"


def test_a_route_in_the_requests_list_stands_for_its_candidates() -> None:
    route = Route(candidates=[Candidate(model="anthropic/claude-haiku-4-5")])
    plan = planner(RoutingConfig(routes={"cheap": route})).plan(
        envelope(models=["gpt-4o-mini", "cheap"])
    )
    assert ids(plan.targets) == ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]


def test_a_provider_without_a_live_worker_is_passed_over_and_alone_is_a_503() -> None:
    resolved = RoutingConfig().resolved(CATALOGUE)
    no_anthropic = CataloguePlanner(
        CATALOGUE, lambda: resolved, served=lambda provider: provider != "anthropic"
    )
    plan = no_anthropic.plan(envelope(models=["anthropic/claude-haiku-4-5", "gpt-4o-mini"]))
    assert ids(plan.targets) == ["openai/gpt-4o-mini"]
    assert plan.passed_over == ["anthropic/claude-haiku-4-5: no worker"]
    with pytest.raises(PlanRefused) as refused:
        no_anthropic.plan(envelope("anthropic/claude-haiku-4-5"))
    assert refused.value.info.code is ErrorCode.UNAVAILABLE
    assert "anthropic" in refused.value.info.message
