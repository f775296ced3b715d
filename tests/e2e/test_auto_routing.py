"""Automatic model choice end to end (issue 6): ``model: "auto"`` through the official ``openai``
SDK, against the real stack.

Each request must land on a model that fits, judged by what the model can do and what it costs
(the catalogue, the quality table and the policy's own floors), never by a model's name: a
price or table update keeps these tests valid as long as the choice still fits. Every answer
explains itself in headers, and its usage row carries the task type, difficulty and policy.
"""

from __future__ import annotations

import re
import statistics
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import openai
import pytest

from contracts.catalogue import ModelCard, default_catalogue
from contracts.features import TaskType
from services.common.routing_config import RoutingConfig
from services.common.routing_policy import BUILT_IN
from services.stack import RunningStack
from tests.e2e.e2e_support import PNG_DATA_URL, WEATHER_TOOL, Metering
from tests.e2e.failover.failover_support import end_sim_outages, sim_outage

pytestmark = pytest.mark.e2e

CATALOGUE = default_catalogue()
BALANCED = BUILT_IN["auto:balanced"]
TABLE = RoutingConfig().quality_table()
ROUTE = re.compile(r"auto:balanced task=(?P<task>\w+) difficulty=(?P<d>[01]\.\d\d) -> (?P<m>\S+)")


def ask(client: openai.OpenAI, content: Any, **extra: Any) -> tuple[Any, dict[str, str]]:
    response = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": content}], **extra
    )
    return response.parse(), dict(response.headers)


def chosen(headers: dict[str, str], task: TaskType) -> ModelCard:
    """The model that answered, after checking the headers explain the choice."""
    assert headers["x-switchyard-task"] == task.value
    route = ROUTE.fullmatch(headers["x-switchyard-route"])
    assert route is not None, headers["x-switchyard-route"]
    assert route["task"] == task.value
    assert route["m"] == headers["x-switchyard-model"]
    card = CATALOGUE.get(headers["x-switchyard-model"])
    assert card is not None
    # Whatever else, the policy's floor for the task holds.
    assert TABLE[card.canonical_id].for_task(task) >= BALANCED.for_task(task).min_quality
    return card


def blended(card: ModelCard) -> Decimal:
    assert card.prices.input is not None
    assert card.prices.output is not None
    return card.prices.input + card.prices.output


def check_usage(metering: Metering, request_id: str, card: ModelCard, task: TaskType) -> None:
    rows = metering.wait_rows(request_id)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["status"] == "ok"
    assert row["model"] == card.canonical_id
    assert row["requested_model"] == "auto"
    assert row["route_reason"] == "auto"
    assert row["task_type"] == task.value
    assert row["policy"] == "auto:balanced"
    assert 0 <= row["difficulty"] <= 1
    assert row["priced"] is True
    assert Decimal(row["cost_usd"]) > 0


def ref() -> str:
    # At the end, where it least colours the prompt's features; the simulator keys replies on
    # the conversation, so tests must not share one.
    return f"(ref {uuid.uuid4().hex[:8]})"


def test_code_goes_to_a_model_rated_for_code(client: openai.OpenAI, metering: Metering) -> None:
    text = (
        "Write a Python function `merge_intervals(intervals: list[tuple[int, int]])` that merges "
        "overlapping intervals and returns them sorted. Add type hints and pytest unit tests "
        f"covering empty input and nested intervals. {ref()}"
    )
    completion, headers = ask(client, text)
    assert completion.choices[0].message.content
    card = chosen(headers, TaskType.CODE)
    # Rated for code above its own overall standing or among the strong: the floor for code is
    # higher than for chat under this policy.
    assert BALANCED.for_task(TaskType.CODE).min_quality > BALANCED.min_quality
    check_usage(metering, headers["x-request-id"], card, TaskType.CODE)


def test_a_long_document_goes_to_a_window_that_holds_it(
    client: openai.OpenAI, metering: Metering
) -> None:
    paragraph = (
        "The committee reviewed the harbour expansion: dredging costs rose eleven percent, the "
        "environmental survey found two protected seagrass beds, and the port authority asked "
        "for a revised schedule that keeps the northern berth open during the works. "
    )
    # ~150,000 tokens: more than a 128k window holds, so only long-context models may serve it.
    document = paragraph * 3500
    completion, headers = ask(
        client, f"Summarise the following report in five bullet points.\n\n{document}\n{ref()}"
    )
    assert completion.choices[0].message.content
    card = chosen(headers, TaskType.SUMMARISATION)
    rows = metering.wait_rows(headers["x-request-id"])
    assert len(rows) == 1, rows
    prompt_tokens = rows[0]["input_tokens"]
    assert prompt_tokens > 128_000
    assert card.context_window is not None
    assert card.context_window >= prompt_tokens + BALANCED.expected_output_tokens
    check_usage(metering, headers["x-request-id"], card, TaskType.SUMMARISATION)


def test_an_image_goes_to_a_vision_model(client: openai.OpenAI, metering: Metering) -> None:
    content = [
        {"type": "text", "text": f"What is in this picture? {ref()}"},
        {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
    ]
    completion, headers = ask(client, content)
    assert completion.choices[0].message.content
    card = chosen(headers, TaskType.VISION)
    assert card.capabilities.vision
    check_usage(metering, headers["x-request-id"], card, TaskType.VISION)


def test_tools_go_to_a_model_that_calls_tools(client: openai.OpenAI, metering: Metering) -> None:
    _, headers = ask(
        client, f"What's the weather in Lisbon right now? {ref()}", tools=[WEATHER_TOOL]
    )
    card = chosen(headers, TaskType.TOOL_USE)
    assert card.capabilities.tools
    check_usage(metering, headers["x-request-id"], card, TaskType.TOOL_USE)


def test_a_greeting_goes_to_a_cheap_model(client: openai.OpenAI, metering: Metering) -> None:
    # No reference tag here: a hex tag reads like code or math to the task model, and nothing
    # in this test depends on the simulator telling conversations apart.
    completion, headers = ask(client, "hi there! how are you today?")
    assert completion.choices[0].message.content
    card = chosen(headers, TaskType.CHAT)
    rated = [c for c in (CATALOGUE.get(m) for m in TABLE) if c is not None and c.priced]
    assert blended(card) <= statistics.median(blended(c) for c in rated)
    check_usage(metering, headers["x-request-id"], card, TaskType.CHAT)


@pytest.fixture
def outages(full_stack: RunningStack) -> Iterator[RunningStack]:
    try:
        yield full_stack
    finally:
        end_sim_outages(full_stack)


def test_a_failing_choice_falls_back_to_the_next_candidate(
    client: openai.OpenAI, metering: Metering, outages: RunningStack
) -> None:
    text = "Good morning! Any tips for staying focused this afternoon?"
    # The first call shows which model the policy picks for this prompt; then that model's
    # vendor goes down and the same prompt must be answered by another candidate.
    _, first = ask(client, text)
    primary = first["x-switchyard-model"]
    sim_outage(outages, model=primary.split("/", 1)[1], status=503, seconds=30)
    completion, headers = ask(client, text)
    assert completion.choices[0].message.content
    assert headers["x-switchyard-model"] != primary
    assert headers["x-switchyard-route"].startswith(f"fallback after {primary}: ")
    assert headers["x-switchyard-attempts"] == "2"
    rows = sorted(metering.wait_rows(headers["x-request-id"], 2), key=lambda r: r["attempt"])
    assert [r["status"] for r in rows] == ["error", "ok"]
    assert rows[0]["model"] == primary
    assert Decimal(rows[0]["cost_usd"]) == 0
    assert rows[1]["model"] == headers["x-switchyard-model"]
    assert all(r["task_type"] == "chat" and r["policy"] == "auto:balanced" for r in rows)


def test_unknown_policy_is_a_404_with_the_known_ones(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(
            model="auto:nonsense", messages=[{"role": "user", "content": "hi"}]
        )
    assert "auto:balanced" in str(refused.value)


def test_a_policy_inside_models_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"models": ["gpt-4o-mini", "auto"]},
        )


TEAM_POLICY = """
policies:
  auto:e2e-team:
    description: the end-to-end test's own policy
    candidates: [gemini/gemini-2.5-flash, anthropic/claude-haiku-4-5]
    weights: {quality: 1, cost: 0, latency: 0}
"""
# A typo in a weight's name: refused whole, naming the field.
BROKEN_POLICY = TEAM_POLICY.replace("latency: 0", "latncy: 0")


@pytest.fixture
def routing_file(full_stack: RunningStack) -> Iterator[Any]:
    path = full_stack.layout.routing_config_file
    original = path.read_text(encoding="utf-8")
    try:
        yield path
    finally:
        path.write_text(original, encoding="utf-8")


def wait_for_policy(client: openai.OpenAI, model: str, *, timeout_s: float = 15.0) -> Any:
    """The first answer under ``model`` once every process has reloaded the file."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return ask_policy(client, model)
        except (openai.NotFoundError, openai.BadRequestError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def ask_policy(client: openai.OpenAI, model: str) -> dict[str, str]:
    response = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": f"hello {ref()}"}]
    )
    return dict(response.headers)


def test_a_bad_policy_edit_is_refused_and_the_running_one_stays(
    client: openai.OpenAI, routing_file: Any
) -> None:
    routing_file.write_text(routing_file.read_text(encoding="utf-8") + TEAM_POLICY)
    headers = wait_for_policy(client, "auto:e2e-team")
    assert headers["x-switchyard-model"] in {
        "gemini/gemini-2.5-flash",
        "anthropic/claude-haiku-4-5",
    }
    good = routing_file.read_text(encoding="utf-8")
    routing_file.write_text(good.replace(TEAM_POLICY, BROKEN_POLICY), encoding="utf-8")
    time.sleep(3)  # every process polls the file once a second
    # Still served, by ingress (which knows the names) and the router (which ranks).
    for _ in range(3):
        headers = ask_policy(client, "auto:e2e-team")
        assert headers["x-switchyard-route"].startswith("auto:e2e-team ")
