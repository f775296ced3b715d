from __future__ import annotations

from typing import Any

from services.metering.report import REPORT_METRICS, format_table


def row(group: str, requests: int, cost: str, *, savings: str = "0") -> dict[str, Any]:
    """One row of ``GET /v1/usage/query``'s answer, as the report asks for it."""
    figures: dict[str, Any] = {metric.field: 0 for metric in REPORT_METRICS}
    return figures | {
        "model": group,
        "requests": requests,
        "attempts": requests + 1,
        "ok": requests,
        "errors": 1,
        "input_tokens": requests * 1000,
        "cache_read_tokens": requests * 10,
        "output_tokens": requests * 100,
        "cost_usd": cost,
        "cost_uncached_usd": cost,
        "savings_usd": savings,
    }


def answer(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"bucket": "none", "group_by": ["model"], "data": rows, "has_more": False}


def test_table_has_a_row_per_group_and_an_exact_total() -> None:
    table = format_table(
        answer(
            [
                row("openai/gpt-4o", 1200, "12.345678900000", savings="1.5"),
                row("anthropic/claude", 3, "0.0000005"),
            ]
        ),
        "7d",
    )

    assert table.splitlines() == [
        "usage in the last 7d, by model",
        "MODEL             REQUESTS  ATTEMPTS  ERRORS  TOKENS IN  CACHED IN  TOKENS OUT"
        "   COST USD  SAVINGS USD",
        "----------------  --------  --------  ------  ---------  ---------  ----------"
        "  ---------  -----------",
        "openai/gpt-4o        1,200     1,201       1  1,200,000     12,000     120,000"
        "  12.345679     1.500000",
        "anthropic/claude         3         4       1      3,000         30         300"
        "   0.000000     0.000000",
        "----------------  --------  --------  ------  ---------  ---------  ----------"
        "  ---------  -----------",
        "TOTAL                1,203     1,205       2  1,203,000     12,030     120,300"
        "  12.345679     1.500000",
    ]


def test_table_says_so_for_empty_windows() -> None:
    assert format_table(answer([]), "30m") == "no usage in the last 30m"
    assert format_table(answer([]), "2026-01-01") == "no usage since 2026-01-01"
