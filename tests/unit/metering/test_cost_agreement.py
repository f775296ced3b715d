"""Issue 9's proof of money: OpenAI's costs endpoint, Switchyard's query endpoint and the request
log agree, to the exact Decimal, with a table worked out by hand.

The events start where workers start: each vendor's own usage object, read by the worker's own
reader (``services.workers.providers.*.response.usage_of``), so that the vendors' token
semantics are part of what is checked:

- OpenAI: ``prompt_tokens`` counts cached tokens (``prompt_tokens_details.cached_tokens``), and
  ``completion_tokens`` counts reasoning tokens (``completion_tokens_details``): reasoning is
  billed as output, never twice.
- Anthropic: ``input_tokens`` excludes cache reads and cache writes, which come separately and
  are priced apart (reads cheaper, writes dearer than input).
- Gemini, through its OpenAI-compatible endpoint: OpenAI's fields; thinking tokens are in
  ``completion_tokens``.
- DeepSeek: the cache hit is ``prompt_cache_hit_tokens``; DeepSeek has no batch API, so its
  batch lines pay the usual prices.

Batch lines (a ``batch_id``) pay the vendor's batch prices where it has them; a batch cache
price the vendor does not list stays the usual one. A failed attempt that used nothing is free;
a stream the vendor cut after answering part is charged for what was delivered.

Prices are USD per million tokens (the cards below); every figure in ``REQUESTS`` is the sum of
tokens times price, divided by 1,000,000, done by hand in the comment above it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from contracts.catalogue import Catalogue, ModelCard, Prices
from contracts.chat import Usage
from contracts.usage import UsageEvent
from services.metering.api import create_app
from services.metering.metrics import MeteringMetrics
from services.metering.recorder import UsageRecorder
from services.metering.store import UsageStore
from services.workers.providers.anthropic import response as anthropic
from services.workers.providers.openai_compat import response as openai_compat

ADMIN_KEY = "sy-admin-test-key-0123456789abcdef"
DAY = datetime(2026, 2, 3, tzinfo=UTC)
DAY_S = int(DAY.timestamp())


def card(provider: str, model: str, **prices: str) -> ModelCard:
    return ModelCard(
        canonical_id=f"{provider}/{model}",
        provider=provider,
        model=model,
        prices=Prices(**{kind: Decimal(value) for kind, value in prices.items()}),
    )


CATALOGUE = Catalogue(
    [
        # OpenAI: half price in batches; no batch price listed for cached input.
        card(
            "openai", "gpt-mini", input="0.15", output="0.60", cache_read="0.075",
            batch_input="0.075", batch_output="0.30",
        ),
        # Anthropic: every batch price listed, half of the usual.
        card(
            "anthropic", "claude-mid", input="3", output="15", cache_read="0.30",
            cache_write="3.75", batch_input="1.5", batch_output="7.5",
            batch_cache_read="0.15", batch_cache_write="1.875",
        ),
        card(
            "gemini", "gemini-flash", input="0.30", output="2.50", cache_read="0.03",
            batch_input="0.15", batch_output="1.25", batch_cache_read="0.015",
        ),
        # DeepSeek: no batch API.
        card("deepseek", "deepseek-chat", input="0.28", output="0.42", cache_read="0.028"),
    ]
)  # fmt: skip


def openai_usage(**wire: Any) -> Usage:
    return openai_compat.usage_of(openai_compat.UsageWire.model_validate(wire))


def anthropic_usage(**wire: Any) -> Usage:
    return anthropic.usage_of(anthropic.UsageWire.model_validate(wire))


_NOTHING = Usage()


def attempt(
    request_id: str,
    number: int,
    model: str,
    usage: Usage,
    *,
    project: str = "acme",
    status: str = "ok",
    batch_id: str | None = None,
    cut: bool = False,
) -> UsageEvent:
    provider = model.split("/", 1)[0]
    return UsageEvent(
        event_id=UsageEvent.make_id(request_id, number),
        request_id=request_id,
        attempt=number,
        ts_ms=(DAY_S + 3600 + len(request_id) * 60 + number) * 1000,
        tenant=project,
        key_id=f"key-{project}",
        protocol="openai.chat_completions",
        mode="batch" if batch_id else "sync",
        lane="batch" if batch_id else "interactive",
        provider=provider,
        model=model,
        requested_model=model,
        status=status,
        error_class=None if status == "ok" else "vendor_error",
        usage=usage,
        usage_estimated=cut,
        batch_id=batch_id,
    )


GPT, CLAUDE, GEMINI, DEEPSEEK = (
    "openai/gpt-mini",
    "anthropic/claude-mid",
    "gemini/gemini-flash",
    "deepseek/deepseek-chat",
)

EVENTS = [
    # o-cache: 2,000 prompt tokens of which 1,200 cached; 1,500 completion tokens of which
    # 1,000 reasoning (inside the 1,500, billed once). 800 * 0.15 + 1,200 * 0.075 +
    # 1,500 * 0.60 = 120 + 90 + 900 = 1,110. Uncached: 2,000 * 0.15 + 900 = 1,200.
    attempt(
        "o-cache", 0, GPT,
        openai_usage(
            prompt_tokens=2000, completion_tokens=1500,
            prompt_tokens_details={"cached_tokens": 1200},
            completion_tokens_details={"reasoning_tokens": 1000},
        ),
    ),
    # o-batch: a batch line at batch prices; cached input at the usual cache price (none listed
    # for batches). 600 * 0.075 + 400 * 0.075 + 400 * 0.30 = 45 + 30 + 120 = 195; uncached the
    # same: the cache price equals the batch input price.
    attempt(
        "o-batch", 0, GPT,
        openai_usage(
            prompt_tokens=1000, completion_tokens=400, prompt_tokens_details={"cached_tokens": 400}
        ),
        batch_id="batch_o",
    ),
    # a-cache: 100 fresh + 5,000 read + 2,000 written = 7,100 prompt tokens. 100 * 3 +
    # 5,000 * 0.30 + 2,000 * 3.75 + 800 * 15 = 300 + 1,500 + 7,500 + 12,000 = 21,300.
    # Uncached: 7,100 * 3 + 12,000 = 33,300.
    attempt(
        "a-cache", 0, CLAUDE,
        anthropic_usage(
            input_tokens=100, cache_read_input_tokens=5000, cache_creation_input_tokens=2000,
            output_tokens=800,
        ),
    ),
    # a-batch: a batch line with a cache read, all at batch prices. 200 * 1.5 + 1,000 * 0.15 +
    # 300 * 7.5 = 300 + 150 + 2,250 = 2,700. Uncached: 1,200 * 1.5 + 2,250 = 4,050.
    attempt(
        "a-batch", 0, CLAUDE,
        anthropic_usage(input_tokens=200, cache_read_input_tokens=1000, output_tokens=300),
        batch_id="batch_a",
        project="beta",
    ),
    # a-cut: attempt 0 failed before any output (free); attempt 1 was a stream the vendor cut
    # after 20 tokens, charged for what was delivered: 50 * 3 + 20 * 15 = 150 + 300 = 450.
    attempt("a-cut", 0, CLAUDE, _NOTHING, status="error"),
    attempt(
        "a-cut", 1, CLAUDE,
        anthropic_usage(input_tokens=50, output_tokens=20),
        status="error",
        cut=True,
    ),
    # g-think: 3,000 prompt tokens, 2,048 cached; 2,200 completion tokens, 2,000 of them
    # thinking. 952 * 0.30 + 2,048 * 0.03 + 2,200 * 2.50 = 285.6 + 61.44 + 5,500 = 5,847.04.
    # Uncached: 3,000 * 0.30 + 5,500 = 6,400.
    attempt(
        "g-think", 0, GEMINI,
        openai_usage(
            prompt_tokens=3000, completion_tokens=2200,
            prompt_tokens_details={"cached_tokens": 2048},
            completion_tokens_details={"reasoning_tokens": 2000},
        ),
    ),
    # g-batch: 500 * 0.15 + 100 * 1.25 = 75 + 125 = 200.
    attempt(
        "g-batch", 0, GEMINI, openai_usage(prompt_tokens=500, completion_tokens=100),
        batch_id="batch_g",
    ),
    # d-cache: 10,000 prompt tokens, 9,000 from DeepSeek's cache. 1,000 * 0.28 + 9,000 * 0.028
    # + 1,000 * 0.42 = 280 + 252 + 420 = 952. Uncached: 10,000 * 0.28 + 420 = 3,220.
    attempt(
        "d-cache", 0, DEEPSEEK,
        openai_usage(
            prompt_tokens=10000, completion_tokens=1000, prompt_cache_hit_tokens=9000,
            prompt_cache_miss_tokens=1000,
        ),
    ),
    # d-fallback: DeepSeek failed (free), the fallback on OpenAI answered: 300 * 0.15 +
    # 100 * 0.60 = 45 + 60 = 105.
    attempt("d-fallback", 0, DEEPSEEK, _NOTHING, status="error"),
    attempt("d-fallback", 1, GPT, openai_usage(prompt_tokens=300, completion_tokens=100)),
    # d-batch: a batch line on a vendor without batch prices pays the usual ones:
    # 100 * 0.28 + 50 * 0.42 = 28 + 21 = 49.
    attempt(
        "d-batch", 0, DEEPSEEK, openai_usage(prompt_tokens=100, completion_tokens=50),
        batch_id="batch_d",
    ),
]  # fmt: skip

_M = Decimal(1_000_000)
# request -> (cost, cost without cache hits), from the comments above.
REQUESTS: dict[str, tuple[Decimal, Decimal]] = {
    "o-cache": (Decimal(1110) / _M, Decimal(1200) / _M),
    "o-batch": (Decimal(195) / _M, Decimal(195) / _M),
    "a-cache": (Decimal(21300) / _M, Decimal(33300) / _M),
    "a-batch": (Decimal(2700) / _M, Decimal(4050) / _M),
    "a-cut": (Decimal(450) / _M, Decimal(450) / _M),
    "g-think": (Decimal("5847.04") / _M, Decimal(6400) / _M),
    "g-batch": (Decimal(200) / _M, Decimal(200) / _M),
    "d-cache": (Decimal(952) / _M, Decimal(3220) / _M),
    "d-fallback": (Decimal(105) / _M, Decimal(105) / _M),
    "d-batch": (Decimal(49) / _M, Decimal(49) / _M),
}
# Where each request's money lands: the model of the attempts that cost anything.
MODEL_OF = {
    "o-cache": GPT, "o-batch": GPT, "d-fallback": GPT,
    "a-cache": CLAUDE, "a-batch": CLAUDE, "a-cut": CLAUDE,
    "g-think": GEMINI, "g-batch": GEMINI,
    "d-cache": DEEPSEEK, "d-batch": DEEPSEEK,
}  # fmt: skip
CACHE_HITS = {"o-cache", "o-batch", "a-cache", "a-batch", "g-think", "d-cache"}
PROJECT_OF = {request: "beta" if request == "a-batch" else "acme" for request in REQUESTS}


def expected_by(key: dict[str, str]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for request, (cost, _) in REQUESTS.items():
        totals[key[request]] = totals.get(key[request], Decimal(0)) + cost
    return totals


@pytest.fixture
async def api(store: UsageStore) -> AsyncIterator[httpx.AsyncClient]:
    await UsageRecorder(store, CATALOGUE, MeteringMetrics()).record(EVENTS)
    app = create_app(store, MeteringMetrics(), lambda: True, admin_key=ADMIN_KEY)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://metering",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    ) as client:
        yield client


async def get(api: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await api.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json(parse_float=Decimal)
    return body


def test_the_hand_table_adds_up() -> None:
    """The table's own arithmetic, and that the cases cover what the issue names."""
    assert sum(cost for cost, _ in REQUESTS.values()) == Decimal("0.03290804")
    assert {e.request_id for e in EVENTS} == set(REQUESTS)
    assert {e.provider for e in EVENTS if e.batch_id} == {
        "openai",
        "anthropic",
        "gemini",
        "deepseek",
    }
    assert any(e.usage.cache_write_tokens for e in EVENTS)
    assert any(e.usage.reasoning_tokens for e in EVENTS)
    assert any(e.status != "ok" and e.usage == _NOTHING for e in EVENTS)


async def test_the_request_log_matches_the_table(api: httpx.AsyncClient) -> None:
    body = await get(
        api, "/v1/usage/requests", since="2026-02-03T00:00:00Z", until="2026-02-04T00:00:00Z",
        limit=50,
    )  # fmt: skip

    rows = {row["request_id"]: row for row in body["data"]}
    assert set(rows) == set(REQUESTS)
    for request, (cost, uncached) in REQUESTS.items():
        row = rows[request]
        assert Decimal(row["cost_usd"]) == cost, request
        assert Decimal(row["cost_uncached_usd"]) == uncached, request
        assert Decimal(row["savings_usd"]) == uncached - cost, request
        assert row["cache_hit"] is (request in CACHE_HITS), request


async def test_openais_costs_endpoint_matches_the_table(api: httpx.AsyncClient) -> None:
    for group_by, key in (("line_item", MODEL_OF), ("project_id", PROJECT_OF)):
        body = await get(
            api, "/v1/organization/costs", start_time=DAY_S, end_time=DAY_S + 86_400,
            bucket_width="1d", **{"group_by[]": group_by},
        )  # fmt: skip

        (bucket,) = body["data"]
        field = "line_item" if group_by == "line_item" else "project_id"
        amounts = {r[field]: r["amount"]["value"] for r in bucket["results"]}
        assert amounts == expected_by(key), group_by
        assert all(type(v) is Decimal for v in amounts.values())  # a JSON number, exact


async def test_the_query_endpoint_matches_the_table_from_every_table(
    api: httpx.AsyncClient,
) -> None:
    answers = {}
    for since, until, bucket in (
        ("2026-02-03T00:00:00Z", "2026-02-04T00:00:00Z", "1d"),  # usage_day
        ("2026-02-03T00:00:00Z", "2026-02-04T00:00:00Z", "1h"),  # usage_hour
        ("2026-02-03T00:00:00.001Z", "2026-02-04T00:00:00Z", "none"),  # usage_events
    ):
        response = await api.get(
            "/v1/usage/query",
            params={
                "since": since, "until": until, "bucket": bucket, "group_by": "model",
                "metrics": "cost,cost_uncached,savings,requests,attempts",
            },
        )  # fmt: skip
        assert response.status_code == 200, response.text
        totals: dict[str, Decimal] = {}
        for row in response.json()["data"]:
            totals[row["model"]] = totals.get(row["model"], Decimal(0)) + Decimal(row["cost_usd"])
        answers[response.headers["x-switchyard-source"]] = totals

    assert set(answers) == {"usage_day", "usage_hour", "usage_events"}
    for source, totals in answers.items():
        assert totals == expected_by(MODEL_OF), source
