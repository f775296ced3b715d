"""What ``x-switchyard-route`` says: the plan's explanation while the first choice answers, the
targets left behind once another one does."""

from __future__ import annotations

from contracts._base import now_ms
from contracts.envelope import ClientProtocol, Mode, RequestEnvelope
from contracts.plan import DispatchPlan, RouteReason, Target
from contracts.sealing import SealedBody
from services.workers.dispatch import _Progress

FIRST = Target(provider="deepseek", model="deepseek-chat", canonical_id="deepseek/deepseek-chat")
SECOND = Target(provider="gemini", model="gemini-2.5-flash", canonical_id="gemini/gemini-2.5-flash")


def plan(reason: RouteReason, passed_over: list[str]) -> DispatchPlan:
    envelope = RequestEnvelope(
        request_id="r",
        tenant="t",
        key_id="k",
        client_protocol=ClientProtocol.OPENAI_CHAT,
        mode=Mode.SYNC,
        requested_model="auto",
        sealed_body=SealedBody(nonce="", ciphertext=""),
        created_at_ms=now_ms(),
        deadline_ms=now_ms() + 1000,
    )
    return DispatchPlan(
        request_id="r",
        envelope=envelope,
        targets=[FIRST, SECOND],
        reason=reason,
        reason_detail="auto:balanced task=chat difficulty=0.20 -> deepseek/deepseek-chat",
        planned_at_ms=now_ms(),
        passed_over=passed_over,
    )


def test_an_auto_first_choice_keeps_its_explanation_after_planning_skips() -> None:
    skipped = ["openai/gpt-4o-mini: no worker"]
    route = _Progress(passed_over=list(skipped)).route(plan(RouteReason.AUTO, skipped), FIRST)
    assert route.startswith("auto:balanced task=chat")


def test_a_fallback_says_what_was_left_behind() -> None:
    failed = ["deepseek/deepseek-chat: vendor_overloaded"]
    route = _Progress(passed_over=failed).route(plan(RouteReason.AUTO, failed), SECOND)
    assert route == "fallback after deepseek/deepseek-chat: vendor_overloaded"


def test_other_plans_name_what_planning_skipped() -> None:
    skipped = ["openai/gpt-4o-mini: circuit open"]
    route = _Progress(passed_over=list(skipped)).route(plan(RouteReason.EXPLICIT, skipped), FIRST)
    assert route == "fallback after openai/gpt-4o-mini: circuit open"
