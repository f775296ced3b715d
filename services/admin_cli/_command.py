"""What every admin command shares: the client it talks through, how it fails, and the options
and arguments that mean the same in every group."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, NoReturn
from urllib.parse import quote

import typer

from services.admin_cli._access import ApiAccess
from services.admin_cli._client import AdminClient
from services.admin_cli._errors import AdminError
from services.admin_cli._json import Json
from services.admin_cli._values import parse_duration

if TYPE_CHECKING:
    import httpx

_EXIT_FAILED = 1


@dataclass(frozen=True)
class Invocation:
    """What ``switchyard admin``'s own options said, for its sub-commands."""

    base_url: str | None
    api_key: str | None
    transport: httpx.BaseTransport | None


@contextmanager
def admin_api(ctx: typer.Context) -> Iterator[AdminClient]:
    """A client for the command's duration; an ``AdminError`` raised within ends the command.
    Access is resolved here rather than in the group's callback, so that ``--help`` works
    without a key."""
    invocation = ctx.find_object(Invocation)
    assert invocation is not None, "sub-commands run under create_app's callback"
    try:
        access = ApiAccess.resolve(
            base_url=invocation.base_url, api_key=invocation.api_key, environ=os.environ
        )
        client = AdminClient(access, invocation.transport)
        try:
            yield client
        finally:
            client.close()
    except AdminError as exc:
        fail(str(exc))


def fail(message: str) -> NoReturn:
    typer.echo(f"switchyard admin: {message}", err=True)
    raise typer.Exit(_EXIT_FAILED)


def segment(text: str) -> str:
    """``text`` as one segment of a path: an id with a ``/`` in it must not open another."""
    return quote(text, safe="")


def project_path(project: str) -> str:
    return f"/organization/projects/{segment(project)}"


def without_none(body: Json) -> Json:
    """A request body without the fields not given, which the API then leaves as they are."""
    return {name: value for name, value in body.items() if value is not None}


# A command's docstring is its --help. Past the first paragraph typer keeps the docstring's line
# breaks, so each further paragraph is written on one line.
def command_group(help_text: str) -> typer.Typer:
    return typer.Typer(no_args_is_help=True, help=help_text)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]
LimitOpt = Annotated[int | None, typer.Option(min=1, help="At most N items (default: every page).")]
ExpiresInOpt = Annotated[
    int | None,
    typer.Option(
        "--expires-in",
        parser=parse_duration,
        metavar="DURATION",
        help="The key stops working after this long: 30m, 12h, 30d, 2w (default: never).",
    ),
]
ProjectArg = Annotated[str, typer.Argument(metavar="PROJECT", help="The project's id (proj_...).")]
