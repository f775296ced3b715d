from __future__ import annotations

from datetime import timedelta

import pytest

from services.metering.window import InvalidWindowError, parse_window


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("45s", timedelta(seconds=45)),
        (" 1H ", timedelta(hours=1)),
    ],
)
def test_parses_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize(
    "text", ["", "h", "1", "1.5h", "-1h", "0m", "1y", "1 hour", "9" * 30 + "d"]
)
def test_refuses_anything_else(text: str) -> None:
    with pytest.raises(InvalidWindowError, match="invalid window"):
        parse_window(text)
