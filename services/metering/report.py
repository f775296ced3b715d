"""``switchyard usage``: requests, attempts, tokens, cost and cache savings by any dimension
(``--group-by``), per time bucket if asked (``--bucket``), as a table, JSON or CSV, or as a
terminal chart of spend over time (``--chart``).

It asks what ``GET /v1/usage/query`` answers (``services.metering.analytics`` says what the
numbers mean). With a ClickHouse server DSN (``http(s)://``) the report runs that query itself.
With chDB, the data directory belongs to the running metering process (chDB admits one process),
so the report asks that process's HTTP API instead, with the admin key (``SWITCHYARD_ADMIN_KEY``,
which ``switchyard usage`` finds in the local stack's ``stack.env``). Either way the answer is the
same JSON, rendered here.

Older scripts keep working: ``--by`` is ``--group-by`` (its names ``key`` and ``task`` read as
``key_id`` and ``task_type``), ``--json`` is ``--format json``, and every JSON row still carries
``group`` (its dimensions' values) and ``cost_usd``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, NoReturn, TypeVar

import httpx
import typer

from services.metering.analytics import (
    Bucket,
    Dimension,
    InvalidAnalyticsQueryError,
    Metric,
    parse_instant,
    parse_usage_query,
    render_csv,
    render_query,
    run_query,
)
from services.metering.settings import MeteringSettings
from services.metering.store import UsageStore
from services.metering.window import InvalidWindowError, parse_window

_E = TypeVar("_E", bound=StrEnum)
_USAGE_ERROR = 2  # what typer itself exits with for a bad option
_UNAVAILABLE = 1
_LEGACY_NAMES = {"key": Dimension.KEY_ID, "task": Dimension.TASK_TYPE}  # ``--by``'s old names
_CHART_SERIES = 5  # the groups that spent most get a line each; the rest share one
_MARKERS = ("•", "x", "+", "o", "*", "#")  # one per line of the chart, (other)'s last

# What the report asks for. Cost first: rows come largest spend first (analytics.order_by).
REPORT_METRICS: tuple[Metric, ...] = (
    Metric.COST,
    Metric.REQUESTS,
    Metric.ATTEMPTS,
    Metric.OK,
    Metric.ERRORS,
    Metric.INPUT_TOKENS,
    Metric.CACHE_READ_TOKENS,
    Metric.CACHE_WRITE_TOKENS,
    Metric.REASONING_TOKENS,
    Metric.OUTPUT_TOKENS,
    Metric.COST_UNCACHED,
    Metric.SAVINGS,
)
# The table's columns: (header, metric); the JSON and CSV carry every metric above.
_TABLE_COLUMNS: tuple[tuple[str, Metric], ...] = (
    ("REQUESTS", Metric.REQUESTS),
    ("ATTEMPTS", Metric.ATTEMPTS),
    ("ERRORS", Metric.ERRORS),
    ("TOKENS IN", Metric.INPUT_TOKENS),
    ("CACHED IN", Metric.CACHE_READ_TOKENS),
    ("TOKENS OUT", Metric.OUTPUT_TOKENS),
    ("COST USD", Metric.COST),
    ("SAVINGS USD", Metric.SAVINGS),
)
_BUCKET_WORDS = {
    Bucket.MINUTE: "minute",
    Bucket.HOUR: "hour",
    Bucket.DAY: "day",
    Bucket.WEEK: "week",
}


class ReportFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


class MeteringUnavailableError(RuntimeError):
    pass


class ReportOptionError(ValueError):
    """An option the report cannot take; the command exits with typer's usage error code."""


@dataclass(frozen=True, kw_only=True)
class UsageReport:
    """What ``switchyard usage`` was asked for."""

    since: str
    group_by: tuple[Dimension, ...]
    bucket: Bucket
    output: ReportFormat
    chart: bool

    def params(self) -> dict[str, list[str]]:
        """The query of ``GET /v1/usage/query`` that answers it."""
        params = {
            "since": [self.since],
            "bucket": [self.bucket.value],
            "metrics": [",".join(m.value for m in REPORT_METRICS)],
            "format": ["json"],
        }
        if self.group_by:
            params["group_by"] = [",".join(d.value for d in self.group_by)]
        return params


def usage_command(
    since: str,
    by: str | Sequence[str] = ("model",),
    as_json: bool = False,
    *,
    output: str = "table",
    bucket: str = "none",
    chart: bool = False,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """``by``: dimensions, each name or comma-separated list (``--group-by`` and ``--by``);
    ``transport``: how to reach the metering service (tests pass a fake one)."""
    try:
        report = read_options(since, by, as_json=as_json, output=output, bucket=bucket, chart=chart)
    except ReportOptionError as exc:
        _fail(str(exc), _USAGE_ERROR)
    settings = MeteringSettings()
    try:
        answer = fetch_usage(settings, report.params(), transport=transport)
    except MeteringUnavailableError as exc:
        _fail(str(exc), _UNAVAILABLE)
    except InvalidAnalyticsQueryError as exc:
        _fail(str(exc), _USAGE_ERROR)
    if answer["has_more"]:
        typer.echo(
            f"switchyard usage: only the first {len(answer['data'])} rows; narrow the query",
            err=True,
        )
    if report.chart:
        typer.echo(format_chart(answer, report.since, colorless=not sys.stdout.isatty()))
    if report.output is ReportFormat.JSON:
        typer.echo(json.dumps(json_rows(answer), indent=2))
    elif report.output is ReportFormat.CSV:
        typer.echo(render_csv(answer["columns"], answer["data"]), nl=False)
    else:
        typer.echo(format_table(answer, report.since))


def read_options(
    since: str,
    by: str | Sequence[str],
    *,
    as_json: bool = False,
    output: str = "table",
    bucket: str = "none",
    chart: bool = False,
) -> UsageReport:
    """The command's options, checked as the metering API would check its query."""
    names = [by] if isinstance(by, str) else list(by)
    dimensions: list[Dimension] = []
    for name in (part.strip() for value in names for part in value.split(",")):
        dimension = _LEGACY_NAMES.get(name) or _dimension(name)
        if dimension not in dimensions:
            dimensions.append(dimension)
    report_format = _choice(ReportFormat, "--format", output)
    report_bucket = _choice(Bucket, "--bucket", bucket)
    if as_json:
        if report_format is ReportFormat.CSV:
            raise ReportOptionError("--json is --format json: give one or the other")
        report_format = ReportFormat.JSON
    if chart and report_format is not ReportFormat.TABLE:
        raise ReportOptionError("--chart draws for a terminal: it goes with --format table")
    try:
        window = _window(since)
    except InvalidAnalyticsQueryError as exc:
        raise ReportOptionError(f"invalid --since: {exc}") from None
    if chart and report_bucket is Bucket.NONE:
        report_bucket = _chart_bucket(window)
    report = UsageReport(
        since=since,
        group_by=tuple(dimensions or [Dimension.MODEL]),
        bucket=report_bucket,
        output=report_format,
        chart=chart,
    )
    try:  # the API's own check, so that a bad option fails here, not over the network
        parse_usage_query(report.params(), now=datetime.now(UTC))
    except InvalidAnalyticsQueryError as exc:
        raise ReportOptionError(f"invalid --{exc.param or 'option'}: {exc}") from None
    return report


def _choice(kind: type[_E], option: str, value: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise ReportOptionError(f"invalid {option} {value!r}: use one of {choices}") from None


def _dimension(name: str) -> Dimension:
    try:
        return Dimension(name)
    except ValueError:
        choices = ", ".join(d.value for d in Dimension)
        raise ReportOptionError(f"invalid --group-by {name!r}: use one of {choices}") from None


def _window(since: str) -> timedelta:
    """How far back ``since`` reaches."""
    now = datetime.now(UTC)
    return now - parse_instant(since, now=now, param="since")


def _chart_bucket(window: timedelta) -> Bucket:
    """A bucket that gives a chart some tens to a few hundred points."""
    if window <= timedelta(hours=3):
        return Bucket.MINUTE
    if window <= timedelta(days=7):
        return Bucket.HOUR
    if window <= timedelta(days=180):
        return Bucket.DAY
    return Bucket.WEEK


# ---- asking -----------------------------------------------------------------------------------


def fetch_usage(
    settings: MeteringSettings,
    params: Mapping[str, Sequence[str]],
    *,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """The JSON body ``GET /v1/usage/query`` answers ``params`` with."""
    if settings.clickhouse_dsn.startswith(("http://", "https://")):
        return asyncio.run(_query_clickhouse(settings.clickhouse_dsn, params))
    return _ask_metering(settings, params, transport)


async def _query_clickhouse(dsn: str, params: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    query, _ = parse_usage_query(params, now=datetime.now(UTC))
    try:
        store = await asyncio.to_thread(UsageStore.connect, dsn)
    except Exception as exc:  # clickhouse-connect raises its own tree and OSErrors
        raise MeteringUnavailableError(f"cannot reach ClickHouse: {exc}") from exc
    try:
        # Whoever holds the DSN reads every project.
        return render_query(await run_query(store, query, scope=None))
    finally:
        store.close()


def _ask_metering(
    settings: MeteringSettings,
    params: Mapping[str, Sequence[str]],
    transport: httpx.BaseTransport | None,
) -> dict[str, Any]:
    base = settings.metering_url
    if settings.admin_key is None:
        raise MeteringUnavailableError(
            "no admin key: set SWITCHYARD_ADMIN_KEY, or run from the directory of the stack "
            "(`make up` keeps it in .local/stack.env)"
        )
    headers = {"authorization": f"Bearer {settings.admin_key.get_secret_value()}"}
    # trust_env=False: a proxy set for the internet must not see the admin key.
    with httpx.Client(transport=transport, timeout=30, trust_env=False) as client:
        try:
            response = client.get(
                f"{base}/v1/usage/query",
                params={name: list(values) for name, values in params.items()},
                headers=headers,
            )
        except httpx.HTTPError as exc:
            raise MeteringUnavailableError(
                f"the metering service is not reachable at {base} ({exc.__class__.__name__}); "
                "start it with `switchyard metering` (or `make up`)"
            ) from exc
    if response.status_code == 200:
        body: dict[str, Any] = response.json()
        return body
    if response.status_code == 400:
        error = response.json().get("error", {})
        raise InvalidAnalyticsQueryError(error.get("param"), error.get("message", response.text))
    raise MeteringUnavailableError(_refusal(base, response))


def _refusal(base: str, response: httpx.Response) -> str:
    if response.status_code == 401:
        return (
            f"the metering service at {base} refused the admin key; "
            "set SWITCHYARD_ADMIN_KEY to the stack's key"
        )
    if response.status_code == 403:
        return f"the metering service at {base} says this key may not read usage"
    if response.status_code == 404:
        return (
            f"the metering service at {base} has no /v1/usage/query: it is older than this "
            "command; restart it (`make up`)"
        )
    return f"the metering service answered {response.status_code}: {response.text[:300]}"


# ---- rendering --------------------------------------------------------------------------------


def json_rows(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The answer's rows, each with ``group``: what ``--json`` printed before, and more."""
    return [{"group": _label(answer, row), **row} for row in answer["data"]]


def format_table(answer: Mapping[str, Any], since: str) -> str:
    """A fixed-width table with a total line. Money is shown to the micro-dollar; JSON and CSV
    carry the stored precision."""
    rows: list[Mapping[str, Any]] = answer["data"]
    if not rows:
        return f"no usage {_span(since)}"
    bucket = Bucket(answer["bucket"])
    group_by: list[str] = answer["group_by"]
    keys = [*(["BUCKET"] if bucket is not Bucket.NONE else []), *map(_header, group_by)]
    keys = keys or ["ALL"]
    body = [(*_key_cells(row, bucket, group_by), *_figures(row)) for row in rows]
    totals = {
        metric.field: sum((_number(row[metric.field]) for row in rows), Decimal(0))
        for _, metric in _TABLE_COLUMNS
    }
    header = (*keys, *(name for name, _ in _TABLE_COLUMNS))
    footer = ("TOTAL", *([""] * (len(keys) - 1)), *_figures(totals))
    table = [header, *body, footer]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]

    def render(line: Sequence[str]) -> str:
        cells = [cell.ljust(width) for cell, width in zip(line[: len(keys)], widths, strict=False)]
        cells += [
            cell.rjust(width)
            for cell, width in zip(line[len(keys) :], widths[len(keys) :], strict=True)
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * width for width in widths)
    lines = [_title(since, group_by, bucket), render(header), rule]
    lines += [render(line) for line in body]
    lines += [rule, render(footer)]
    return "\n".join(lines)


def format_chart(
    answer: Mapping[str, Any], since: str, *, colorless: bool, size: tuple[int, int] | None = None
) -> str:
    """Spend per bucket, a line per group (the five that spent most, and the rest together)."""
    import plotext  # only the chart needs it

    bucket = Bucket(answer["bucket"])
    rows: list[Mapping[str, Any]] = answer["data"]
    if bucket is Bucket.NONE or not rows:
        return f"no usage {_span(since)} to chart"
    spend: dict[str, dict[datetime, Decimal]] = {}
    for row in rows:
        series = spend.setdefault(_label(answer, row), {})
        start = datetime.fromisoformat(row["bucket"])
        series[start] = series.get(start, Decimal(0)) + Decimal(row[Metric.COST.field])
    ranked = sorted(spend, key=lambda label: (-sum(spend[label].values()), label))
    shown = {label: spend[label] for label in ranked[:_CHART_SERIES]}
    if len(ranked) > _CHART_SERIES:
        rest: dict[datetime, Decimal] = {}
        for label in ranked[_CHART_SERIES:]:
            for start, cost in spend[label].items():
                rest[start] = rest.get(start, Decimal(0)) + cost
        shown["(other)"] = rest
    starts = _bucket_starts(
        bucket, min(min(v) for v in spend.values()), max(max(v) for v in spend.values())
    )
    form = "%Y-%m-%d %H:%M" if bucket in (Bucket.MINUTE, Bucket.HOUR) else "%Y-%m-%d"
    width, height = size or _chart_size()
    figure = plotext.figure
    figure.clear.all()
    figure.plot_size(width, height)
    xs = list(range(len(starts)))
    for series, marker in zip(shown.values(), _MARKERS, strict=False):
        # Pixels, not money: the chart may go through floats; the table beside it does not.
        ys = [float(series.get(start, 0)) for start in starts]
        figure.draw(figure.signal(xs, ys, marker=marker).lines())
    ticks = sorted({round(i * (len(starts) - 1) / 4) for i in range(5)})
    figure.ruler(0).ticks(ticks, [starts[i].strftime(form) for i in ticks])
    figure.title(f"spend per {_BUCKET_WORDS[bucket]}, USD, by {', '.join(answer['group_by'])}")
    chart: str = figure.build().string(colorless=colorless)
    figure.clear.all()
    # The legend below the chart rather than in it, where it would hide lines; each line is
    # drawn with its own marker, so that it reads without colours too.
    legend = "   ".join(
        f"{marker} {label or '(none)'}" for label, marker in zip(shown, _MARKERS, strict=False)
    )
    return f"{chart.rstrip()}\n{legend}\n"


def _bucket_starts(bucket: Bucket, first: datetime, last: datetime) -> list[datetime]:
    """Every bucket from the first with usage to the last, the empty ones too: a chart must not
    draw a straight line across a quiet hour."""
    starts = [first]
    while starts[-1] < last and len(starts) < 10_000:
        starts.append(starts[-1] + bucket.width)
    return starts


def _chart_size() -> tuple[int, int]:
    columns, lines = shutil.get_terminal_size((100, 30))
    return max(columns, 40), max(min(lines - 4, 25), 10)


def _label(answer: Mapping[str, Any], row: Mapping[str, Any]) -> str:
    return " / ".join(str(row[d]) for d in answer["group_by"])


def _header(dimension: str) -> str:
    return dimension.upper().replace("_", " ")


def _key_cells(row: Mapping[str, Any], bucket: Bucket, group_by: Sequence[str]) -> list[str]:
    cells = [_bucket_cell(row["bucket"], bucket)] if bucket is not Bucket.NONE else []
    cells += [str(row[d]) or "(none)" for d in group_by]
    return cells or ["all"]


def _bucket_cell(start: str, bucket: Bucket) -> str:
    moment = datetime.fromisoformat(start)
    return moment.strftime(
        "%Y-%m-%d %H:%M" if bucket in (Bucket.MINUTE, Bucket.HOUR) else "%Y-%m-%d"
    )


def _number(value: Any) -> Decimal:
    return Decimal(str(value))


def _figures(row: Mapping[str, Any]) -> tuple[str, ...]:
    cells: list[str] = []
    for _, metric in _TABLE_COLUMNS:
        value = _number(row[metric.field])
        if metric.is_money:
            cells.append(f"{value.quantize(Decimal('0.000001')):,}")
        else:
            cells.append(f"{int(value):,}")
    return tuple(cells)


def _span(since: str) -> str:
    try:
        parse_window(since)
    except InvalidWindowError:
        return f"since {since}"
    return f"in the last {since}"


def _title(since: str, group_by: Sequence[str], bucket: Bucket) -> str:
    title = f"usage {_span(since)}"
    if group_by:
        title += f", by {', '.join(group_by)}"
    if bucket is not Bucket.NONE:
        title += f", per {_BUCKET_WORDS[bucket]}"
    return title


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"switchyard usage: {message}", err=True)
    raise typer.Exit(code)
