"""Amounts of the credit ledger: USD to integer nano-USD and back, exact and rounded up, and the
calendar month (UTC) a cost counts in."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, localcontext

import pytest

from services.common.credit import NANOS_PER_USD, month_of, nanos_to_usd, usd_to_nanos_ceil


@pytest.mark.parametrize(
    ("usd", "nanos"),
    [
        ("0", 0),
        ("-0", 0),
        ("1", NANOS_PER_USD),
        ("0.000000001", 1),
        ("12.345678901", 12_345_678_901),
        ("1E+3", 1000 * NANOS_PER_USD),
        ("9223372036.854775807", 2**63 - 1),  # int64's top, in USD
    ],
)
def test_whole_nanos_convert_exactly(usd: str, nanos: int) -> None:
    assert usd_to_nanos_ceil(Decimal(usd)) == nanos


@pytest.mark.parametrize(
    ("usd", "nanos"),
    [
        ("0.0000000001", 1),
        ("0.0000000010000000000000000001", 2),
        ("1.5E-10", 1),
        ("0.0000000019", 2),
        ("2.0000000000001", 2 * NANOS_PER_USD + 1),
        # Ceiling, not away from zero: a negative amount (a refund) rounds towards zero.
        ("-0.0000000015", -1),
    ],
)
def test_fractions_of_a_nano_round_up(usd: str, nanos: int) -> None:
    assert usd_to_nanos_ceil(Decimal(usd)) == nanos


def test_a_token_price_per_million_rounds_up_per_charge() -> None:
    per_token = Decimal("0.075") / 1_000_000  # $0.075 per million tokens: 75 nano-USD a token
    assert usd_to_nanos_ceil(per_token * 3) == 225
    assert usd_to_nanos_ceil(Decimal("0.15") / 1_000_000 * 7 / 3) == 350  # 349.99...


def test_conversion_does_not_depend_on_the_decimal_context() -> None:
    """More digits than the default context's 28: no intermediate may round them away."""
    usd = Decimal("1234567890123456789012345.0000000001")
    expected = 1234567890123456789012345 * NANOS_PER_USD + 1
    assert usd_to_nanos_ceil(usd) == expected
    with localcontext() as context:
        context.prec = 5
        assert usd_to_nanos_ceil(usd) == expected
        assert nanos_to_usd(expected) == Decimal("1234567890123456789012345.000000001")


def test_floats_and_non_finite_amounts_are_refused() -> None:
    with pytest.raises(TypeError):
        usd_to_nanos_ceil(0.1)  # type: ignore[arg-type]
    for text in ("NaN", "Infinity", "-Infinity", "sNaN"):
        with pytest.raises(ValueError, match="finite"):
            usd_to_nanos_ceil(Decimal(text))


@pytest.mark.parametrize(
    ("nanos", "usd"),
    [
        (0, "0E-9"),
        (1, "1E-9"),
        (1_500_000_000, "1.500000000"),
        (-5, "-5E-9"),
        (2**63 - 1, "9223372036.854775807"),
    ],
)
def test_nanos_read_back_as_exact_usd_with_nine_places(nanos: int, usd: str) -> None:
    value = nanos_to_usd(nanos)
    assert str(value) == usd
    assert value == Decimal(usd)
    assert value.as_tuple().exponent == -9


@pytest.mark.parametrize("nanos", [0, 1, 999_999_999, 10**9, 10**9 + 1, 2**53 + 1, 2**63 - 1, -7])
def test_nanos_round_trip(nanos: int) -> None:
    assert usd_to_nanos_ceil(nanos_to_usd(nanos)) == nanos


def _ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()) * 1000


@pytest.mark.parametrize(
    ("ts_ms", "month"),
    [
        (0, "1970-01"),
        (-1, "1969-12"),
        (_ms(2024, 2, 29, 23, 59, 59) + 999, "2024-02"),
        (_ms(2024, 3, 1), "2024-03"),
        (_ms(2023, 12, 31, 23, 59, 59) + 999, "2023-12"),
        (_ms(2024, 1, 1), "2024-01"),
    ],
)
def test_month_of_is_the_utc_calendar_month(ts_ms: int, month: str) -> None:
    assert month_of(ts_ms) == month
