"""Plans that move between providers (issue 5): a primary that fails sends the request to the
next model of its plan, on that model's provider pool, through the official ``openai`` SDK.

The failing primary is made by the simulator's model-scoped directive (``[sim:fail=503@model]``:
only that model fails, every other model answers the same conversation), or by pointing the
openai pool at a closed port. Every attempt is one usage row; failed ones cost nothing.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import openai
import orjson
import pytest

from services.stack import RunningStack
from tests.e2e.e2e_support import (
    Metering,
    assert_ok_row,
    assert_unpriced_failure,
    sim_prompt_tokens,
)
from tests.e2e.failover.failover_support import extra_worker, free_port, sim_calls_by_model
from tests.e2e.faults.fault_support import restored

pytestmark = pytest.mark.e2e

PRIMARY = "openai/gpt-4o-mini"
FALLBACK = "anthropic/claude-haiku-4-5"
# With another target in the plan, a server error moves on at once (only rate limits are
# retried on the same target): one failed attempt, then the fallback.
TRIES_PER_TARGET = 1


def prompt(label: str, directives: str = "") -> str:
    return f"{label} {uuid.uuid4().hex} {directives}".strip()


def check_rows(
    metering: Metering, request_id: str, *, text: str, failed: int, error_class: str
) -> None:
    rows = sorted(metering.wait_rows(request_id, failed + 1), key=lambda r: r["attempt"])
    assert [r["attempt"] for r in rows] == list(range(failed + 1)), rows
    for row in rows[:failed]:
        assert row["model"] == PRIMARY
        assert_unpriced_failure(row, request_id=request_id, error_class=error_class)
    last = rows[-1]
    assert_ok_row(
        last,
        request_id=request_id,
        provider="anthropic",
        model=FALLBACK,
        input_tokens=sim_prompt_tokens(text),
        output_tokens=last["output_tokens"],
    )
    assert last["output_tokens"] > 0


def test_a_failing_primary_is_answered_by_the_next_model_sync(
    client: openai.OpenAI, metering: Metering, full_stack: RunningStack
) -> None:
    text = prompt("fallback sync", f"[sim:fail=503@{PRIMARY.split('/')[1]}]")
    response = client.chat.completions.with_raw_response.create(
        model=PRIMARY,
        messages=[{"role": "user", "content": text}],
        extra_body={"models": [PRIMARY, FALLBACK]},
    )
    completion = response.parse()
    headers = response.headers
    assert completion.model == FALLBACK
    assert completion.choices[0].message.content
    assert headers["x-switchyard-model"] == FALLBACK
    assert headers["x-switchyard-provider"] == "anthropic"
    assert headers["x-switchyard-attempts"] == str(TRIES_PER_TARGET + 1)
    assert headers["x-switchyard-route"].startswith(f"fallback after {PRIMARY}: vendor_overloaded")
    check_rows(
        metering,
        headers["x-request-id"],
        text=text,
        failed=TRIES_PER_TARGET,
        error_class="vendor_overloaded",
    )


def test_a_stream_whose_primary_fails_before_its_first_token_falls_back(
    client: openai.OpenAI, metering: Metering
) -> None:
    text = prompt("fallback stream", f"[sim:fail=500@{PRIMARY.split('/')[1]}]")
    with client.chat.completions.with_streaming_response.create(
        model=PRIMARY,
        messages=[{"role": "user", "content": text}],
        stream=True,
        extra_body={"models": [PRIMARY, FALLBACK]},
    ) as response:
        headers = response.headers
        chunks = list(response.parse())
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content
    assert {c.model for c in chunks} == {FALLBACK}
    assert headers["x-switchyard-model"] == FALLBACK
    assert headers["x-switchyard-attempts"] == str(TRIES_PER_TARGET + 1)
    check_rows(
        metering,
        headers["x-request-id"],
        text=text,
        failed=TRIES_PER_TARGET,
        error_class="vendor_error",
    )


def test_a_stream_that_fails_after_its_first_token_ends_in_an_error_not_a_splice(
    full_stack: RunningStack, metering: Metering
) -> None:
    """A fallback list is there, yet the stream is not restarted on another model: the caller
    already holds part of the first model's answer."""
    text = prompt("no splice", "[sim:tokens=60] [sim:disconnect]")
    body: dict[str, Any] = {
        "model": PRIMARY,
        "models": [PRIMARY, FALLBACK],
        "messages": [{"role": "user", "content": text}],
        "stream": True,
    }
    events: list[dict[str, Any]] = []
    with httpx.stream(
        "POST",
        f"{full_stack.base_url}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {full_stack.admin_key}"},
        timeout=60.0,
        trust_env=False,
    ) as response:
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            if line.startswith("data: {"):
                events.append(orjson.loads(line.removeprefix("data: ")))
    models = {e["model"] for e in events if "model" in e}
    assert models == {PRIMARY}, models
    assert "error" in events[-1]
    rows = metering.wait_rows(request_id)
    assert len(rows) == 1, rows  # one attempt, never a second model
    assert rows[0]["model"] == PRIMARY
    assert rows[0]["status"] == "error"
    assert rows[0]["usage_estimated"] is True
    assert Decimal(rows[0]["cost_usd"]) > 0  # charged for what was delivered


def test_a_prompt_too_long_for_the_primary_skips_it_without_a_vendor_call(
    client: openai.OpenAI, full_stack: RunningStack, metering: Metering
) -> None:
    small, large = "moonshot/moonshot-v1-8k", "moonshot/kimi-k3"
    before = sim_calls_by_model(full_stack).get("moonshot-v1-8k", 0)
    # About 12,000 tokens by ingress's estimate: more than the 8k window.
    text = prompt("long prompt", "harbor " * 6_800)
    response = client.chat.completions.with_raw_response.create(
        model=small,
        messages=[{"role": "user", "content": text}],
        extra_body={"models": [small, large]},
    )
    assert response.parse().model == large
    assert response.headers["x-switchyard-attempts"] == "1"
    assert "context window" in response.headers["x-switchyard-route"]
    assert sim_calls_by_model(full_stack).get("moonshot-v1-8k", 0) == before
    rows = metering.wait_rows(response.headers["x-request-id"])
    assert [(r["model"], r["status"]) for r in rows] == [(large, "ok")]


def test_a_prompt_too_long_for_every_model_is_a_400_without_a_vendor_call(
    client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="moonshot/moonshot-v1-8k",
            messages=[{"role": "user", "content": "harbor " * 6_800}],
        )
    assert refused.value.code == "context_length_exceeded"


def test_a_named_route_is_served_by_one_of_its_candidates(client: openai.OpenAI) -> None:
    response = client.chat.completions.with_raw_response.create(
        model="test-route", messages=[{"role": "user", "content": prompt("route")}]
    )
    assert response.parse().model in {"xai/grok-code-fast-1", "dashscope/qwen-plus"}
    assert response.headers["x-switchyard-route"] == "route test-route"


def test_an_unknown_model_in_the_list_is_a_404_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(
            model=PRIMARY,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"models": [PRIMARY, "no-such-model-anywhere"]},
        )
    assert refused.value.param == "models[1]"


def test_a_primary_whose_port_is_closed_is_answered_by_the_fallback(
    full_stack: RunningStack, metering: Metering
) -> None:
    """The openai pool is replaced by one whose vendor address refuses connections."""
    closed = free_port()  # bound and released: nothing listens there
    with restored(full_stack):
        full_stack.stack.kill("worker-openai")
        with (
            extra_worker(
                full_stack, "openai", {"OPENAI_BASE_URL": f"http://127.0.0.1:{closed}/v1"}
            ),
            openai.OpenAI(
                base_url=full_stack.base_url, api_key=full_stack.admin_key, max_retries=0
            ) as sdk,
        ):
            for stream in (False, True):
                text = prompt(f"closed port stream={stream}")
                body = {
                    "model": PRIMARY,
                    "messages": [{"role": "user", "content": text}],
                    "extra_body": {"models": [PRIMARY, FALLBACK]},
                }
                if stream:
                    with sdk.chat.completions.with_streaming_response.create(
                        stream=True,
                        **body,  # type: ignore[call-overload]
                    ) as streamed:
                        headers = streamed.headers
                        chunks = list(streamed.parse())
                    assert {c.model for c in chunks} == {FALLBACK}
                else:
                    raw = sdk.chat.completions.with_raw_response.create(**body)  # type: ignore[call-overload]
                    headers = raw.headers
                    assert raw.parse().model == FALLBACK
                assert headers["x-switchyard-model"] == FALLBACK
                assert headers["x-switchyard-provider"] == "anthropic"
                assert "vendor_unreachable" in headers["x-switchyard-route"]
                check_rows(
                    metering,
                    headers["x-request-id"],
                    text=text,
                    failed=int(headers["x-switchyard-attempts"]) - 1,
                    error_class="vendor_unreachable",
                )
