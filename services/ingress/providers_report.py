"""``switchyard providers``: each provider's replicas, capacity and circuits, and its models'
error rates and latency, from the running ingress's ``GET /v1/providers``.

Tables are drawn with rich (already here through typer) rather than by hand.
"""

from __future__ import annotations

import json
import os
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.table import Table

_UNAVAILABLE = 1


def providers_command(provider: str | None, as_json: bool) -> None:
    base_url = os.environ.get("SWITCHYARD_BASE_URL", "http://127.0.0.1:8080/v1").rstrip("/")
    admin_key = os.environ.get("SWITCHYARD_ADMIN_KEY")
    if not admin_key:
        _fail("SWITCHYARD_ADMIN_KEY is not set (and no local stack's stack.env was found)")
    try:
        response = httpx.get(
            f"{base_url}/providers",
            params={"provider": provider} if provider else None,
            headers={"authorization": f"Bearer {admin_key}"},
            timeout=10.0,
            trust_env=False,
        )
    except httpx.HTTPError as exc:
        _fail(f"could not reach the ingress at {base_url}: {exc}")
    if response.status_code != 200:
        _fail(f"the ingress answered {response.status_code}: {response.text[:300]}")
    body = response.json()
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    Console().print(*tables(body))


def tables(body: dict[str, Any]) -> list[Table]:
    minutes = body.get("window_minutes", 5)
    providers = Table(title="Providers")
    for column in (
        "provider",
        "replicas",
        "vendor",
        "circuit",
        "in flight / limit",
        "rpm",
        "tpm",
        "paused",
    ):
        providers.add_column(column)
    models = Table(title=f"Models (last {minutes} min)")
    for column in ("model", "circuit", "requests", "error rate", "p50 ms", "p95 ms", "p99 ms"):
        models.add_column(column, justify="left" if column in ("model", "circuit") else "right")
    for item in body["data"]:
        capacity = item["capacity"]
        hosts = sorted(
            {r["vendor_host"] + (" (sim)" if r["simulated"] else "") for r in item["replicas"]}
        )
        providers.add_row(
            item["id"],
            str(len(item["replicas"])),
            ", ".join(hosts) or "-",
            item["circuit"]["state"],
            f"{capacity['in_flight']} / {capacity['concurrency_limit']:g}",
            _used(capacity["rpm_used"], capacity["rpm"]),
            _used(capacity["tpm_used"], capacity["tpm"]),
            "yes" if capacity["paused_until_ms"] else "",
        )
        for model in item["models"]:
            latency = model["latency_ms"]
            models.add_row(
                model["id"],
                model["circuit"]["state"],
                str(model["requests"]),
                f"{model['error_rate']:.1%}",
                *(_ms(latency[q]) for q in ("p50", "p95", "p99")),
            )
    return [providers, models]


def _used(used: int, limit: int | None) -> str:
    return f"{used} / {limit}" if limit is not None else "-"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _fail(message: str) -> NoReturn:
    typer.echo(f"switchyard providers: {message}", err=True)
    raise typer.Exit(_UNAVAILABLE)
