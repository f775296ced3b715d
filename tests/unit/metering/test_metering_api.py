from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import typer
import uvicorn

from contracts._base import now_ms
from services.metering.api import create_app
from services.metering.metrics import MeteringMetrics
from services.metering.recorder import UsageRecorder
from services.metering.report import usage_command
from services.metering.settings import MeteringSettings
from services.metering.store import UsageStore
from tests.unit.metering.metering_factories import priced_catalogue, usage_event
from tests.unit.metering.serving import ListeningServer, free_port

ADMIN_KEY = "sy-admin-test-key-0123456789abcdef"


@pytest.fixture
async def recorded(store: UsageStore) -> MeteringMetrics:
    metrics = MeteringMetrics()
    now = now_ms()
    await UsageRecorder(store, priced_catalogue(), metrics).record(
        [
            usage_event("r1", ts_ms=now),
            # a timeout before any output: the worker sends no tokens, so it costs nothing
            usage_event("r2", 1, ts_ms=now, status="error", error_class="vendor_timeout", usage={}),
            usage_event("r2", 2, ts_ms=now, usage={"input_tokens": 10, "output_tokens": 10}),
            usage_event("r3", ts_ms=now, model="anthropic/claude-test", provider="anthropic"),
        ]
    )
    return metrics


@pytest.fixture
async def api(store: UsageStore, recorded: MeteringMetrics) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, recorded, lambda: True, admin_key=ADMIN_KEY)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://metering",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    ) as client:
        yield client


@pytest.fixture
async def anonymous(store: UsageStore) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, MeteringMetrics(), lambda: True, admin_key=ADMIN_KEY)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metering") as client:
        yield client


_USAGE_ROUTES = [
    ("/v1/usage/summary", {"since": "1h"}),
    ("/v1/usage/events", {"request_id": "r1"}),
]


@pytest.mark.parametrize(("path", "params"), _USAGE_ROUTES)
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing API key"),
        ({"authorization": "Bearer sy-admin-wrong-key-0123456789ab"}, "Incorrect API key"),
        ({"x-api-key": ADMIN_KEY[:-1]}, "Incorrect API key"),
        ({"authorization": f"Basic {ADMIN_KEY}"}, "Missing API key"),
        ({"authorization": ADMIN_KEY}, "Missing API key"),  # no scheme
    ],
)
async def test_usage_routes_refuse_without_the_admin_key(
    anonymous: httpx.AsyncClient,
    recorded: MeteringMetrics,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
    message: str,
) -> None:
    response = await anonymous.get(path, params=params, headers=headers)

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert error["code"] == "authentication"
    assert error["message"].startswith(message)
    assert "rows" not in response.json()
    assert "openai" not in response.text  # no usage leaks into the refusal


@pytest.mark.parametrize(("path", "params"), _USAGE_ROUTES)
@pytest.mark.parametrize(
    "headers", [{"authorization": f"Bearer {ADMIN_KEY}"}, {"x-api-key": ADMIN_KEY}]
)
async def test_usage_routes_answer_the_admin_key_either_way(
    anonymous: httpx.AsyncClient,
    recorded: MeteringMetrics,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
) -> None:
    response = await anonymous.get(path, params=params, headers=headers)

    assert response.status_code == 200
    assert response.json()["rows"]


async def test_without_a_configured_key_nothing_is_accepted(store: UsageStore) -> None:
    app = create_app(store, MeteringMetrics(), lambda: True, admin_key=None)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://metering"
    ) as client:
        for key in ("", "None", ADMIN_KEY):
            response = await client.get("/v1/usage/summary", headers={"x-api-key": key})
            assert response.status_code == 401


async def test_health_and_metrics_need_no_key(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/healthz")).status_code == 200
    assert (await anonymous.get("/metrics")).status_code == 200


def test_settings_bind_loopback_by_default_and_take_the_admin_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SWITCHYARD_METERING_HOST", raising=False)
    monkeypatch.setenv("SWITCHYARD_ADMIN_KEY", ADMIN_KEY)
    settings = MeteringSettings()
    assert settings.metering_host == "127.0.0.1"
    assert settings.admin_key is not None
    assert settings.admin_key.get_secret_value() == ADMIN_KEY
    monkeypatch.setenv("SWITCHYARD_METERING_HOST", "0.0.0.0")
    assert MeteringSettings().metering_url == "http://127.0.0.1:8091"
    monkeypatch.setenv("SWITCHYARD_METERING_HOST", "::1")
    assert MeteringSettings().metering_url == "http://[::1]:8091"


@pytest.mark.parametrize("key", ["admin", "changeme", "short-key"])
def test_settings_refuse_placeholder_keys(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("SWITCHYARD_ADMIN_KEY", key)
    with pytest.raises(ValueError, match="16\\+ characters"):
        MeteringSettings()


async def test_summary_by_provider(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/usage/summary", params={"since": "1h", "by": "provider"})

    assert response.status_code == 200
    body = response.json()
    assert (body["since"], body["by"]) == ("1h", "provider")
    assert body["rows"] == [
        {
            "group": "anthropic",
            "requests": 1,
            "ok": 1,
            "errors": 0,
            "unpriced": 0,
            "input_tokens": 1000,
            "output_tokens": 500,
            "cache_read_tokens": 0,
            "cost_usd": "0.010500000000",  # (1000 * 3 + 500 * 15) / 1e6
        },
        {
            "group": "openai",
            "requests": 3,
            "ok": 2,
            "errors": 1,
            "unpriced": 0,
            "input_tokens": 1010,
            "output_tokens": 510,
            "cache_read_tokens": 0,
            "cost_usd": "0.007625000000",  # 0.0075 + (10 * 2.5 + 10 * 10) / 1e6
        },
    ]


async def test_summary_refuses_a_bad_window_or_grouping(api: httpx.AsyncClient) -> None:
    bad_window = await api.get("/v1/usage/summary", params={"since": "soon"})
    bad_group = await api.get("/v1/usage/summary", params={"by": "colour"})

    assert bad_window.status_code == 400
    assert "invalid window" in bad_window.json()["detail"]
    assert bad_group.status_code == 422


async def test_events_of_one_request(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/usage/events", params={"request_id": "r2"})

    rows = response.json()["rows"]
    assert [(r["attempt"], r["status"], r["error_class"], r["cost_usd"]) for r in rows] == [
        (1, "error", "vendor_timeout", "0E-12"),
        (2, "ok", "", "0.000125000000"),
    ]


async def test_health_and_metrics(store: UsageStore, api: httpx.AsyncClient) -> None:
    healthy = await api.get("/healthz")
    metrics = await api.get("/metrics")
    stalled = create_app(store, MeteringMetrics(), lambda: False, admin_key=ADMIN_KEY)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stalled), base_url="http://metering"
    ) as client:
        unhealthy = await client.get("/healthz")

    assert healthy.json() == {"ok": True, "parts": {"consumer": True, "store": True}}
    assert unhealthy.status_code == 503
    assert "sy_metering_events_inserted_total 4.0" in metrics.text
    assert "sy_metering_batch_insert_seconds_count 1.0" in metrics.text


# ---- the report, through a real HTTP server ---------------------------------------------------


@pytest.fixture
def metering_env(monkeypatch: pytest.MonkeyPatch, chdb_dsn: str) -> int:
    port = free_port()
    monkeypatch.setenv("SWITCHYARD_CLICKHOUSE_DSN", chdb_dsn)
    monkeypatch.setenv("SWITCHYARD_METERING_PORT", str(port))
    monkeypatch.setenv("SWITCHYARD_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.delenv("SWITCHYARD_METERING_HOST", raising=False)
    return port


@contextlib.asynccontextmanager
async def serving_metering(
    store: UsageStore, metrics: MeteringMetrics, port: int
) -> AsyncIterator[None]:
    app = create_app(store, metrics, lambda: True, admin_key=ADMIN_KEY)
    server = ListeningServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="error")
    )
    serving = asyncio.create_task(server.serve())
    try:
        await server.listening.wait()
        yield
    finally:
        server.should_exit = True
        await serving


async def test_report_asks_the_metering_service(
    store: UsageStore,
    recorded: MeteringMetrics,
    metering_env: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with serving_metering(store, recorded, metering_env):
        await asyncio.to_thread(usage_command, since="1h", by="model", as_json=True)
        as_json = json.loads(capsys.readouterr().out)
        await asyncio.to_thread(usage_command, since="1h", by="model", as_json=False)
        table = capsys.readouterr().out

    assert [(row["group"], row["cost_usd"]) for row in as_json] == [
        ("anthropic/claude-test", "0.010500000000"),
        ("openai/gpt-test", "0.007625000000"),
    ]
    assert "TOTAL" in table
    assert "0.018125" in table


def test_report_without_metering_says_so(
    metering_env: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as exit_:
        usage_command(since="1h", by="model", as_json=False)

    assert exit_.value.exit_code == 1
    assert "metering service is not reachable" in capsys.readouterr().err


async def test_report_with_the_wrong_key_says_so(
    store: UsageStore,
    recorded: MeteringMetrics,
    metering_env: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SWITCHYARD_ADMIN_KEY", "sy-admin-some-other-stack-key-0123")
    async with serving_metering(store, recorded, metering_env):
        with pytest.raises(typer.Exit) as exit_:
            await asyncio.to_thread(usage_command, since="1h", by="model", as_json=True)

    assert exit_.value.exit_code == 1
    err = capsys.readouterr().err
    assert "refused the admin key" in err
    assert "some-other-stack-key" not in err


def test_report_without_a_key_says_so(
    metering_env: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SWITCHYARD_ADMIN_KEY")
    with pytest.raises(typer.Exit) as exit_:
        usage_command(since="1h", by="model", as_json=False)

    assert exit_.value.exit_code == 1
    assert "SWITCHYARD_ADMIN_KEY" in capsys.readouterr().err


@pytest.mark.parametrize(("since", "by"), [("1 fortnight", "model"), ("1h", "colour")])
def test_report_refuses_bad_options(
    since: str, by: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as exit_:
        usage_command(since=since, by=by, as_json=False)

    assert exit_.value.exit_code == 2
    assert "invalid" in capsys.readouterr().err
