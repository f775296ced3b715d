"""Factories for metering's tests: usage events and model cards. A plain module, not a conftest,
so that tests import it by a name no other directory uses."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from contracts.catalogue import Catalogue, ModelCard, Prices
from contracts.usage import UsageEvent

_BASE_TS_MS = 1_767_268_800_000  # 2026-01-01T12:00:00Z


def usage_event(request_id: str = "req-1", attempt: int = 1, **overrides: Any) -> UsageEvent:
    fields: dict[str, Any] = {
        "event_id": UsageEvent.make_id(request_id, attempt),
        "request_id": request_id,
        "attempt": attempt,
        "ts_ms": _BASE_TS_MS,
        "tenant": "acme",
        "key_id": "key-1",
        "protocol": "openai.chat_completions",
        "mode": "sync",
        "lane": "interactive",
        "provider": "openai",
        "model": "openai/gpt-test",
        "requested_model": "gpt-test",
        "status": "ok",
        "usage": {"input_tokens": 1000, "output_tokens": 500},
    }
    fields.update(overrides)
    return UsageEvent.model_validate(fields)


def model_card(
    model: str = "gpt-test",
    provider: str = "openai",
    *,
    input: str | None = "2.50",
    output: str | None = "10",
    cache_read: str | None = None,
    cache_write: str | None = None,
) -> ModelCard:
    def dec(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    return ModelCard(
        canonical_id=f"{provider}/{model}",
        provider=provider,
        model=model,
        prices=Prices(
            input=dec(input),
            output=dec(output),
            cache_read=dec(cache_read),
            cache_write=dec(cache_write),
        ),
    )


def priced_catalogue() -> Catalogue:
    return Catalogue(
        [
            model_card("gpt-test", input="2.50", output="10", cache_read="1.25"),
            model_card("claude-test", "anthropic", input="3", output="15", cache_read="0.30"),
        ]
    )


# Two priced models, one with cache writes (Anthropic's semantics), shared by the analytics tests
# (USD per million tokens).
TWO_MODELS = Catalogue(
    [
        model_card("gpt-test", input="2.50", output="10", cache_read="1.25"),
        model_card(
            "claude-test",
            "anthropic",
            input="3",
            output="15",
            cache_read="0.30",
            cache_write="3.75",
        ),
    ]
)
