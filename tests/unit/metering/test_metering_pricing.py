from __future__ import annotations

from decimal import Decimal

from services.common.pricing import Pricing, price
from services.metering.rows import stored_cost
from tests.unit.metering.metering_factories import model_card, usage_event


def test_prices_each_kind_of_token_at_its_own_price() -> None:
    card = model_card(input="2.50", output="10", cache_read="0.25", cache_write="3.125")
    event = usage_event(
        usage={
            "input_tokens": 1000,  # 700 uncached + 200 read from cache + 100 written to it
            "cache_read_tokens": 200,
            "cache_write_tokens": 100,
            "output_tokens": 500,
            "reasoning_tokens": 300,  # inside output_tokens: not billed again
        }
    )

    # (700 * 2.50 + 200 * 0.25 + 100 * 3.125 + 500 * 10) / 1e6; without the cache, all 1000
    # input tokens at 2.50: (1000 * 2.50 + 500 * 10) / 1e6
    assert price(event, card) == Pricing(
        cost_usd=Decimal("0.0071125"), priced=True, uncached_usd=Decimal("0.0075")
    )


def test_cache_tokens_without_a_cache_price_cost_the_input_price() -> None:
    card = model_card(input="3", output="15")
    event = usage_event(
        usage={"input_tokens": 100, "cache_read_tokens": 40, "cache_write_tokens": 10}
    )

    assert price(event, card).cost_usd == Decimal("0.0003")


def test_cost_is_exact_where_a_float_is_not() -> None:
    card = model_card(input="0.1", output="0.2")
    event = usage_event(usage={"input_tokens": 1, "output_tokens": 2})

    cost = price(event, card).cost_usd

    assert cost == Decimal("0.0000005")
    assert sum([cost] * 3) == Decimal("0.0000015")  # 3 * (0.1e-6 + 0.4e-6) as floats is not


def test_a_failed_attempt_that_consumed_nothing_costs_nothing() -> None:
    event = usage_event(status="error", error_class="vendor_error", usage={})

    assert price(event, model_card()) == Pricing(cost_usd=Decimal(0), priced=True)
    # nothing to re-price either, so an unknown model does not make it unpriced
    assert price(event, None) == Pricing(cost_usd=Decimal(0), priced=True)


def test_a_failed_attempt_is_charged_the_usage_it_carries() -> None:
    # A stream the vendor cut after 1000 prompt and 500 delivered tokens: what was delivered.
    cut = usage_event(status="error", error_class="vendor_error")
    estimated = usage_event(status="error", error_class="vendor_error", usage_estimated=True)
    ok = usage_event()

    # (1000 * 2.50 + 500 * 10) / 1e6
    assert price(cut, model_card()) == Pricing(
        cost_usd=Decimal("0.0075"), priced=True, uncached_usd=Decimal("0.0075")
    )
    assert price(estimated, model_card()) == price(ok, model_card()) == price(cut, model_card())


def test_a_failed_attempt_with_usage_on_an_unknown_model_is_unpriced() -> None:
    event = usage_event(status="error", error_class="vendor_error", usage={"output_tokens": 1})

    assert price(event, None) == Pricing(cost_usd=Decimal(0), priced=False)


def test_an_unknown_model_is_free_and_unpriced() -> None:
    assert price(usage_event(), None) == Pricing(cost_usd=Decimal(0), priced=False)


def test_a_card_without_an_output_price_is_unpriced() -> None:
    assert not price(usage_event(), model_card(output=None)).priced


def test_zero_tokens_cost_zero() -> None:
    event = usage_event(usage={})

    assert price(event, model_card()) == Pricing(cost_usd=Decimal(0), priced=True)


def test_storage_rounds_half_even_to_twelve_places() -> None:
    assert stored_cost(Decimal("0.0000000000005")) == Decimal("0.000000000000")
    assert stored_cost(Decimal("0.0000000000015")) == Decimal("0.000000000002")
    assert stored_cost(Decimal("0.0071125")) == Decimal("0.007112500000")
