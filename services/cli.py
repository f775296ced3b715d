"""The ``switchyard`` command. Each sub-command imports its service lazily, so ``switchyard
usage`` does not pay for loading FastAPI, and a broken optional part breaks only its command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import typer

# Cheap to import: the admin commands load httpx only when one runs.
from services.admin_cli import create_app as create_admin_app

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Switchyard: an AI model router."
)
routing_app = typer.Typer(no_args_is_help=True, help="Evaluate the router's automatic choice.")
app.add_typer(routing_app, name="routing")
app.add_typer(create_admin_app(), name="admin")

# services.router.evaluation.datasets.DatasetFormat, spelled again because importing it here
# would load pydantic for every command; tests/unit/router/test_routing_eval.py pins the two.
_EvalFormat = Literal["routellm", "mt-bench", "arena-hard"]


@app.command()
def ingress() -> None:
    """Run the HTTP ingress (OpenAI-compatible API)."""
    from services.ingress.server import serve

    serve()


@app.command()
def router() -> None:
    """Run the router: sy.requests.v1 -> sy.dispatch.<provider>.v1."""
    from services.router.service import serve

    serve()


@app.command()
def worker(
    provider: Annotated[
        list[str], typer.Option("--provider", "-p", help="Provider to serve; repeatable.")
    ],
) -> None:
    """Run a worker for one or more providers (one consumer group each)."""
    from services.workers.service import serve

    serve(provider)


@app.command()
def metering() -> None:
    """Run the metering service: sy.usage.v1 -> ClickHouse."""
    from services.metering.service import serve

    serve()


@app.command()
def vendorsim(
    host: Annotated[str, typer.Option(envvar="SWITCHYARD_VENDORSIM_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SWITCHYARD_VENDORSIM_PORT")] = 8090,
) -> None:
    """Run the vendor simulator (OpenAI and Anthropic wire protocols)."""
    from services.vendorsim.server import serve

    serve(host=host, port=port)


@app.command()
def usage(
    since: Annotated[
        str, typer.Option(help="Window back from now (30m, 1h, 7d ...) or an ISO 8601 time.")
    ] = "1h",
    group_by: Annotated[
        list[str] | None,
        typer.Option(
            "--group-by",
            "-g",
            help="Dimension(s) to group by, repeatable or comma-separated: project, key_id,"
            " user_tag, provider, model, requested_model, route_reason, task_type, policy, lane,"
            " batch_id, status, error_class, attempt. Default: model.",
        ),
    ] = None,
    by: Annotated[
        list[str] | None, typer.Option("--by", help="Same as --group-by (key, task: older names).")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    bucket: Annotated[
        str, typer.Option(help="Rows per time bucket: none, 1m, 1h, 1d or 1w.")
    ] = "none",
    chart: Annotated[
        bool, typer.Option("--chart", help="Draw spend over time (bucket chosen if none given).")
    ] = False,
) -> None:
    """Print requests, tokens, cost and cache savings from ClickHouse, by any dimension."""
    from services.metering.report import usage_command

    _adopt_stack_env()

    usage_command(
        since=since,
        by=[*(group_by or ()), *(by or ())] or ["model"],
        as_json=as_json,
        output=output,
        bucket=bucket,
        chart=chart,
    )


@app.command()
def providers(
    provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print each provider's replicas, capacity and circuits, and its models' health."""
    from services.ingress.providers_report import providers_command

    _adopt_stack_env()
    providers_command(provider, as_json)


@routing_app.command("eval")
def routing_eval(
    dataset_format: Annotated[
        _EvalFormat,
        typer.Option(
            "--format",
            help="routellm: correctness CSVs (scores the difficulty as a strong/weak router);"
            " mt-bench, arena-hard: question jsonl (scores the task label).",
        ),
    ],
    paths: Annotated[
        list[Path], typer.Argument(help="Files; for routellm also directories of *.csv.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    strong: Annotated[
        str, typer.Option(help="routellm: the strong model's column.")
    ] = "gpt-4-1106-preview",
    weak: Annotated[
        str, typer.Option(help="routellm: the weak model's column.")
    ] = "mistralai/Mixtral-8x7B-Instruct-v0.1",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N prompts, in load order.")
    ] = None,
) -> None:
    """Run the automatic-choice decision over an evaluation set and print quality metrics."""
    from services.router.evaluation.decision import full_decision
    from services.router.evaluation.run import routing_eval_command

    routing_eval_command(
        dataset_format,
        paths,
        decide=full_decision(),
        as_json=as_json,
        strong=strong,
        weak=weak,
        limit=limit,
    )


def _adopt_stack_env() -> None:
    """Client commands find the local stack's addresses in ``$SWITCHYARD_HOME/stack.env``
    (written by ``switchyard up``); variables already set win."""
    from services.common.stack_env import parse_stack_env

    home = Path(os.environ.get("SWITCHYARD_HOME") or ".local")
    env_file = home / "stack.env"
    if not env_file.is_file():
        return
    for name, value in parse_stack_env(env_file.read_text()).items():
        os.environ.setdefault(name, value)


def main() -> None:
    # The local stack commands (up, down, status, run) live in services.stack; they are added
    # here so that `switchyard up` works as well as `make up`.
    from services.stack.cli import register

    register(app)
    app()
