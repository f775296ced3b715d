"""What the admin commands print: the API's JSON with ``--json``, else plain text.

The tables are drawn by hand, like ``switchyard usage``'s, not with rich (which typer brings, and
``switchyard providers`` uses): rich fits a table to 80 columns when stdout is not a terminal,
wrapping ids and keys mid-string, and these lines are grepped as much as read.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import typer

from services.admin_cli._json import Json, json_text


def emit(body: Json, as_json: bool, render: Callable[[Json], str]) -> None:
    typer.echo(json_text(body) if as_json else render(body))


def list_items(body: Json) -> list[Json]:
    """The objects of a list answer."""
    return [item for item in body.get("data", []) if isinstance(item, dict)]


def table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, right: Collection[int] = ()
) -> str:
    """Columns two spaces apart; ``right`` names the columns of figures."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = (
            text.rjust(width) if i in right else text.ljust(width)
            for i, (text, width) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), *(line(row) for row in rows)])


def fields(pairs: Sequence[tuple[str, str]]) -> str:
    """One object, a field a line: the names in a column, the values aligned after them."""
    width = max(len(name) for name, _ in pairs)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in pairs)


def cell(value: object) -> str:
    """A value as shown: ``-`` for none (a blank would shift a grepped line's columns)."""
    return "-" if value is None or value == "" else str(value)


def when(epoch: object) -> str:
    """A Unix time as a UTC date and minute."""
    if not isinstance(epoch, int | Decimal):
        return cell(epoch)
    try:
        return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):  # not a time a calendar holds
        return str(epoch)


def dollars(cents: object) -> str:
    """An amount in cents as ``$1,234.50``."""
    if not isinstance(cents, int):
        return cell(cents)
    return f"${Decimal(cents).scaleb(-2):,.2f}"
