"""``switchyard usage``: its options, what it asks ``GET /v1/usage/query``, and how it prints the
answer (table, JSON, CSV, chart). Through a fake transport for the rendering and the refusals, and
end to end against the metering app over a real chDB, through the ``switchyard`` command."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import typer
import uvicorn
from typer.testing import CliRunner

from services.cli import app as switchyard
from services.metering.analytics import Bucket, Dimension
from services.metering.api import create_app
from services.metering.metrics import MeteringMetrics
from services.metering.report import (
    REPORT_METRICS,
    ReportFormat,
    ReportOptionError,
    format_chart,
    format_table,
    read_options,
    usage_command,
)
from services.metering.store import UsageStore
from tests.unit.metering.serving import ListeningServer, free_port
from tests.unit.metering.test_analytics_requests import ADMIN_KEY, client_of, recorded

__all__ = ["recorded"]  # the fixture, shared with the request log's tests

_METRICS = [m.value for m in REPORT_METRICS]
_FIELDS = [m.field for m in REPORT_METRICS]


def figures(cost: str, requests: int, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {field: 0 for field in _FIELDS}
    row |= {
        "cost_usd": cost,
        "requests": requests,
        "attempts": requests + 1,
        "ok": requests,
        "errors": 1,
        "input_tokens": requests * 1000,
        "cache_read_tokens": requests * 10,
        "output_tokens": requests * 100,
        "cost_uncached_usd": cost,
        "savings_usd": "0.000000000000",
    }
    return row | extra


def answer(
    rows: list[dict[str, Any]],
    group_by: tuple[str, ...] = ("model",),
    bucket: str = "none",
    *,
    has_more: bool = False,
) -> dict[str, Any]:
    keys = (["bucket"] if bucket != "none" else []) + list(group_by)
    return {
        "object": "list",
        "source": "usage_hour",
        "since": "2026-01-01T00:00:00Z",
        "until": None,
        "bucket": bucket,
        "group_by": list(group_by),
        "metrics": _METRICS,
        "columns": keys + _FIELDS,
        "data": rows,
        "has_more": has_more,
    }


TWO_MODELS = answer(
    [
        {"model": "openai/gpt-4o", **figures("12.345678900000", 1200, savings_usd="1.5")},
        {"model": "anthropic/claude", **figures("0.000000500000", 3)},
    ]
)


class FakeMetering:
    """A transport that answers every request with one response and keeps what it was asked."""

    def __init__(self, body: Any, status: int = 200) -> None:
        self.body, self.status = body, status
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return httpx.Response(self.status, json=self.body)

        return httpx.MockTransport(handle)

    @property
    def params(self) -> dict[str, list[str]]:
        query = self.requests[-1].url.params
        return {name: query.get_list(name) for name in query}


@pytest.fixture
def metering_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("SWITCHYARD_HOME", str(tmp_path))  # no stack.env of a real stack
    monkeypatch.setenv("SWITCHYARD_CLICKHOUSE_DSN", f"chdb://{tmp_path}/none")
    monkeypatch.setenv("SWITCHYARD_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.delenv("SWITCHYARD_METERING_HOST", raising=False)


Run = Callable[..., str]


@pytest.fixture
def run(metering_env: None, capsys: pytest.CaptureFixture[str]) -> Run:
    def run(fake: FakeMetering, since: str = "7d", by: Any = "model", **options: Any) -> str:
        usage_command(since, by, transport=fake.transport(), **options)
        return capsys.readouterr().out

    return run


def test_it_asks_the_query_endpoint_with_the_admin_key(run: Run) -> None:
    fake = FakeMetering(TWO_MODELS)

    run(fake, "7d", ["model", "provider,lane"], bucket="1d")

    request = fake.requests[0]
    assert request.url.path == "/v1/usage/query"
    assert request.headers["authorization"] == f"Bearer {ADMIN_KEY}"
    assert fake.params == {
        "since": ["7d"],
        "bucket": ["1d"],
        "metrics": [",".join(_METRICS)],
        "format": ["json"],
        "group_by": ["model,provider,lane"],
    }


def test_the_answer_is_printed_as_a_table(run: Run) -> None:
    lines = run(FakeMetering(TWO_MODELS), "7d").splitlines()

    # the table itself: tests/unit/metering/test_metering_report_table.py
    assert lines[0] == "usage in the last 7d, by model"
    assert lines[-1].split() == [
        "TOTAL",
        "1,203",
        "1,205",
        "2",
        "1,203,000",
        "12,030",
        "120,300",
        "12.345679",
        "1.500000",
    ]


def test_buckets_and_several_dimensions_get_a_column_each() -> None:
    body = answer(
        [
            {"bucket": "2026-01-01T12:00:00Z", "model": "m", "key_id": "", **figures("1", 1)},
            {"bucket": "2026-01-01T13:00:00Z", "model": "m", "key_id": "k", **figures("2", 2)},
        ],
        group_by=("model", "key_id"),
        bucket="1h",
    )

    lines = format_table(body, "2026-01-01T12:00:00Z").splitlines()

    assert lines[0] == "usage since 2026-01-01T12:00:00Z, by model, key_id, per hour"
    assert lines[1].split()[:4] == ["BUCKET", "MODEL", "KEY", "ID"]
    assert lines[3].startswith("2026-01-01 12:00  m      (none)         1         2")
    assert lines[4].startswith("2026-01-01 13:00  m      k              2         3")
    assert lines[-1].startswith("TOTAL                                   3         5")
    assert format_table(answer([]), "30m") == "no usage in the last 30m"


def test_json_rows_keep_group_and_cost_usd_for_older_scripts(run: Run) -> None:
    fake = FakeMetering(
        answer([{"model": "m", "lane": "batch", **figures("0.5", 1)}], ("model", "lane"))
    )

    printed = json.loads(run(fake, by="model,lane", as_json=True))
    again = json.loads(run(fake, by="model,lane", output="json"))

    assert printed == again
    assert printed[0]["group"] == "m / batch"
    assert (printed[0]["model"], printed[0]["lane"], printed[0]["cost_usd"]) == (
        "m",
        "batch",
        "0.5",
    )


def test_csv_is_the_answer_with_a_header(run: Run) -> None:
    out = run(FakeMetering(TWO_MODELS), output="csv")

    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == TWO_MODELS["columns"]
    assert rows[1][:2] == ["openai/gpt-4o", "12.345678900000"]
    assert len(rows) == 3


def test_the_chart_draws_spend_per_bucket_with_a_line_per_group() -> None:
    rows = [
        {"bucket": f"2026-01-01T{hour:02}:00:00Z", "model": model, **figures(cost, 1)}
        for hour, model, cost in [
            (10, "openai/gpt-4o", "0.5"),
            (12, "openai/gpt-4o", "1.25"),
            (11, "anthropic/claude", "0.2"),
        ]
    ]

    chart = format_chart(answer(rows, bucket="1h"), "1d", colorless=True, size=(100, 20))

    assert "spend per hour, USD, by model" in chart
    assert "openai/gpt-4o" in chart
    assert "anthropic/claude" in chart
    assert "1.25" in chart  # the top of the y axis
    assert format_chart(answer([], bucket="1h"), "1d", colorless=True) == (
        "no usage in the last 1d to chart"
    )


def test_the_chart_keeps_five_lines_and_folds_the_rest() -> None:
    rows = [
        {"bucket": "2026-01-01T00:00:00Z", "model": f"model-{i}", **figures(str(i + 1), 1)}
        for i in range(7)
    ]

    chart = format_chart(answer(rows, bucket="1d"), "7d", colorless=True, size=(120, 30))

    assert "(other)" in chart
    assert "model-6" in chart
    assert "model-0" not in chart  # the least spent is folded into (other)


def test_a_chart_alone_picks_a_bucket_that_fits_the_window(run: Run) -> None:
    fake = FakeMetering(answer([], bucket="1m"))
    buckets = []
    for since in ("2h", "7d", "30d", "365d"):
        run(fake, since, chart=True)
        buckets.append(fake.params["bucket"][0])

    assert buckets == ["1m", "1h", "1d", "1w"]
    run(fake, "7d", chart=True, bucket="1d")
    assert fake.params["bucket"] == ["1d"]


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("key", (Dimension.KEY_ID,)),  # the names --by took before
        ("task", (Dimension.TASK_TYPE,)),
        (["model", "model,provider"], (Dimension.MODEL, Dimension.PROVIDER)),
        ([" user_tag , attempt "], (Dimension.USER_TAG, Dimension.ATTEMPT)),
        ([], (Dimension.MODEL,)),
    ],
)
def test_group_by_names(by: Any, expected: tuple[Dimension, ...]) -> None:
    assert read_options("1h", by).group_by == expected


def test_format_aliases() -> None:
    assert read_options("1h", "model", as_json=True).output is ReportFormat.JSON
    assert read_options("1h", "model", as_json=True, output="json").output is ReportFormat.JSON
    assert read_options("1h", "model", chart=True).bucket is Bucket.MINUTE


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"since": "1 fortnight"}, "invalid --since"),
        ({"by": "colour"}, "invalid --group-by 'colour'"),
        ({"output": "yaml"}, "invalid --format"),
        ({"bucket": "2h"}, "invalid --bucket '2h': use one of none, 1m, 1h, 1d, 1w"),
        ({"as_json": True, "output": "csv"}, "--json is --format json"),
        ({"chart": True, "output": "json"}, "--chart draws for a terminal"),
    ],
)
def test_bad_options_exit_2(
    metering_env: None, capsys: pytest.CaptureFixture[str], options: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"since": "1h", "by": "model"} | options
    with pytest.raises(ReportOptionError, match=r"invalid|--"):
        read_options(**arguments)
    with pytest.raises(typer.Exit) as exit_:
        usage_command(transport=FakeMetering(TWO_MODELS).transport(), **arguments)

    assert exit_.value.exit_code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("status", "body", "code", "message"),
    [
        (401, {"error": {"message": "Incorrect API key provided."}}, 1, "refused the admin key"),
        (403, {"error": {"message": "no"}}, 1, "may not read usage"),
        (404, {"detail": "Not Found"}, 1, "older than this command"),
        (500, {"detail": "boom"}, 1, "answered 500"),
        (400, {"error": {"message": "Invalid bucket", "param": "bucket"}}, 2, "Invalid bucket"),
    ],
)
def test_refusals_say_what_to_do(
    run: Run,
    capsys: pytest.CaptureFixture[str],
    status: int,
    body: Any,
    code: int,
    message: str,
) -> None:
    with pytest.raises(typer.Exit) as exit_:
        run(FakeMetering(body, status))

    assert exit_.value.exit_code == code
    err = capsys.readouterr().err
    assert message in err
    assert ADMIN_KEY not in err


def test_rows_left_out_are_mentioned(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    usage_command(
        "1h", "model", transport=FakeMetering({**TWO_MODELS, "has_more": True}).transport()
    )

    assert "only the first 2 rows" in capsys.readouterr().err


# ---- end to end: the switchyard command against the metering app ------------------------------


@contextlib.asynccontextmanager
async def serving(store: UsageStore, port: int) -> AsyncIterator[None]:
    app = create_app(store, MeteringMetrics(), lambda: True, admin_key=ADMIN_KEY)
    server = ListeningServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="error")
    )
    task = asyncio.create_task(server.serve())
    try:
        await server.listening.wait()
        yield
    finally:
        server.should_exit = True
        await task


async def test_the_command_prints_what_the_api_answers(
    recorded: UsageStore, metering_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("SWITCHYARD_METERING_PORT", str(port))
    since = "2026-01-01T12:00:00Z"  # up to now: the event set but r-old
    runner = CliRunner()

    def invoke(*arguments: str) -> str:
        result = runner.invoke(switchyard, ["usage", "--since", since, *arguments])
        assert result.exit_code == 0, result.output
        return result.stdout

    async with serving(recorded, port), client_of(recorded) as api:
        as_csv = await asyncio.to_thread(
            invoke, "--group-by", "provider", "--by", "lane", "--bucket", "1h", "--format", "csv"
        )
        table = await asyncio.to_thread(invoke, "-g", "project,provider")
        as_json = await asyncio.to_thread(invoke, "--by", "key", "--json")
        chart = await asyncio.to_thread(invoke, "--chart", "--group-by", "project")
        direct = await api.get(
            "/v1/usage/query",
            params={
                "since": since,
                "group_by": "provider,lane",
                "bucket": "1h",
                "metrics": ",".join(_METRICS),
                "format": "csv",
            },
        )

    # The same CSV (click's test runner reads CRLF line ends as LF).
    assert as_csv == direct.text.replace("\r\n", "\n")
    assert as_csv.splitlines()[1].startswith("2026-01-01T12:00:00Z,openai,interactive,0.0085")
    assert table.splitlines()[-1].split() == [
        "TOTAL",
        "5",
        "9",
        "5",
        "3,300",
        "1,400",
        "950",
        "0.017725",
        "0.002825",
    ]
    assert [(row["group"], row["key_id"], row["cost_usd"]) for row in json.loads(as_json)] == [
        ("key-1", "key-1", "0.008500000000"),
        ("key-2", "key-2", "0.008175000000"),
        ("key-3", "key-3", "0.001050000000"),
    ]
    assert "spend per week, USD, by project" in chart
    assert "TOTAL" in chart  # the table follows the chart
