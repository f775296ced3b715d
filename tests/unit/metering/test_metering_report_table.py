from __future__ import annotations

from decimal import Decimal

from services.metering.report import format_table
from services.metering.store import GroupBy, SummaryRow


def row(group: str, requests: int, cost: str, *, unpriced: int = 0) -> SummaryRow:
    return SummaryRow(
        group=group,
        requests=requests,
        ok=requests - 1,
        errors=1,
        unpriced=unpriced,
        input_tokens=requests * 1000,
        output_tokens=requests * 100,
        cache_read_tokens=requests * 10,
        cost_usd=Decimal(cost),
    )


def test_table_has_a_row_per_group_and_an_exact_total() -> None:
    table = format_table(
        [row("openai/gpt-4o", 1200, "12.345678900000"), row("anthropic/claude", 3, "0.0000005")],
        GroupBy.MODEL,
        "7d",
    )

    assert table.splitlines() == [
        "usage in the last 7d, by model",
        "MODEL             REQUESTS     OK  ERRORS  TOKENS IN  CACHED IN  TOKENS OUT   COST USD",
        "----------------  --------  -----  ------  ---------  ---------  ----------  ---------",
        "openai/gpt-4o        1,200  1,199       1  1,200,000     12,000     120,000  12.345679",
        "anthropic/claude         3      2       1      3,000         30         300   0.000000",
        "----------------  --------  -----  ------  ---------  ---------  ----------  ---------",
        "TOTAL                1,203  1,201       2  1,203,000     12,030     120,300  12.345679",
    ]


def test_table_mentions_unpriced_calls_and_empty_windows() -> None:
    table = format_table([row("x/y", 2, "0", unpriced=2)], GroupBy.KEY, "1h")

    assert table.splitlines()[-1] == "2 successful call(s) not priced (model without a price)"
    assert format_table([], GroupBy.KEY, "30m") == "no usage in the last 30m"
