"""``switchyard usage``: requests, tokens and cost per model, provider, key, task type or routing
policy, as a table or JSON.

With a ClickHouse server DSN (``http(s)://``) the report queries ClickHouse itself. With chDB,
the data directory belongs to the running metering process (chDB admits one process), so the
report asks that process's HTTP API instead, with the admin key (``SWITCHYARD_ADMIN_KEY``, which
``switchyard usage`` finds in the local stack's ``stack.env``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import NoReturn

import httpx
import typer
from pydantic import TypeAdapter

from services.metering.settings import MeteringSettings
from services.metering.store import GroupBy, SummaryRow, UsageStore
from services.metering.window import InvalidWindowError, parse_window

_ROWS = TypeAdapter(list[SummaryRow])
_USAGE_ERROR = 2  # what typer itself exits with for a bad option
_UNAVAILABLE = 1


class MeteringUnavailableError(RuntimeError):
    pass


def usage_command(since: str, by: str, as_json: bool) -> None:
    try:
        window = parse_window(since)
        group_by = GroupBy(by)
    except InvalidWindowError as exc:
        _fail(str(exc), _USAGE_ERROR)
    except ValueError:
        choices = ", ".join(g.value for g in GroupBy)
        _fail(f"invalid --by {by!r}: use one of {choices}", _USAGE_ERROR)
    settings = MeteringSettings()
    try:
        rows = fetch_summary(settings, since, window, group_by)
    except MeteringUnavailableError as exc:
        _fail(str(exc), _UNAVAILABLE)
    if as_json:
        typer.echo(json.dumps(_ROWS.dump_python(rows, mode="json"), indent=2))
    else:
        typer.echo(format_table(rows, group_by, since))


def fetch_summary(
    settings: MeteringSettings, since: str, window: timedelta, by: GroupBy
) -> list[SummaryRow]:
    if settings.clickhouse_dsn.startswith(("http://", "https://")):
        return asyncio.run(_query_clickhouse(settings.clickhouse_dsn, window, by))
    return _ask_metering(settings, since, by)


async def _query_clickhouse(dsn: str, window: timedelta, by: GroupBy) -> list[SummaryRow]:
    try:
        store = await asyncio.to_thread(UsageStore.connect, dsn)
    except Exception as exc:  # clickhouse-connect raises its own tree and OSErrors
        raise MeteringUnavailableError(f"cannot reach ClickHouse: {exc}") from exc
    try:
        return await store.summary(window, by)
    finally:
        store.close()


def _ask_metering(settings: MeteringSettings, since: str, by: GroupBy) -> list[SummaryRow]:
    base = settings.metering_url
    if settings.admin_key is None:
        raise MeteringUnavailableError(
            "no admin key: set SWITCHYARD_ADMIN_KEY, or run from the directory of the stack "
            "(`make up` keeps it in .local/stack.env)"
        )
    headers = {"authorization": f"Bearer {settings.admin_key.get_secret_value()}"}
    try:
        response = httpx.get(
            f"{base}/v1/usage/summary",
            params={"since": since, "by": by.value},
            headers=headers,
            timeout=30,
            trust_env=False,  # a proxy set for the internet must not see the admin key
        )
    except httpx.HTTPError as exc:
        raise MeteringUnavailableError(
            f"the metering service is not reachable at {base} ({exc.__class__.__name__}); "
            "start it with `switchyard metering` (or `make up`)"
        ) from exc
    if response.status_code == 401:
        raise MeteringUnavailableError(
            f"the metering service at {base} refused the admin key; "
            "set SWITCHYARD_ADMIN_KEY to the stack's key"
        )
    if response.status_code != 200:
        raise MeteringUnavailableError(
            f"the metering service answered {response.status_code}: {response.text[:300]}"
        )
    return _ROWS.validate_python(response.json()["rows"])


_HEADERS = ("REQUESTS", "OK", "ERRORS", "TOKENS IN", "CACHED IN", "TOKENS OUT", "COST USD")


def format_table(rows: Sequence[SummaryRow], by: GroupBy, since: str) -> str:
    """A fixed-width table with a total line. Cost is shown to the micro-dollar; the JSON output
    carries the stored precision."""
    if not rows:
        return f"no usage in the last {since}"
    body = [(row.group or "(none)", *_figures(row)) for row in rows]
    total = SummaryRow(
        group="total",
        requests=sum(r.requests for r in rows),
        ok=sum(r.ok for r in rows),
        errors=sum(r.errors for r in rows),
        unpriced=sum(r.unpriced for r in rows),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        cache_read_tokens=sum(r.cache_read_tokens for r in rows),
        cost_usd=sum((r.cost_usd for r in rows), Decimal(0)),
    )
    header = (by.value.upper(), *_HEADERS)
    footer = ("TOTAL", *_figures(total))
    table = [header, *body, footer]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]

    def render(line: Sequence[str]) -> str:
        first = line[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True))
        return "  ".join((first, *rest))

    rule = "  ".join("-" * width for width in widths)
    lines = [f"usage in the last {since}, by {by.value}", render(header), rule]
    lines += [render(line) for line in body]
    lines += [rule, render(footer)]
    if total.unpriced:
        lines.append(f"{total.unpriced} successful call(s) not priced (model without a price)")
    return "\n".join(lines)


def _figures(row: SummaryRow) -> tuple[str, ...]:
    return (
        f"{row.requests:,}",
        f"{row.ok:,}",
        f"{row.errors:,}",
        f"{row.input_tokens:,}",
        f"{row.cache_read_tokens:,}",
        f"{row.output_tokens:,}",
        f"{row.cost_usd.quantize(Decimal('0.000001')):,}",
    )


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"switchyard usage: {message}", err=True)
    raise typer.Exit(code)
