"""Values typed on the command line: dollar amounts and durations, checked before anything is
sent (a bad one is a usage error, exit code 2), and turned into the API's spelling."""

from __future__ import annotations

from decimal import Decimal, Inexact, InvalidOperation, localcontext

import typer


def parse_amount(text: str) -> Decimal:
    """A dollar amount as typed (``100``, ``19.99``), exact and not negative. Its precision is
    the API's to judge (credit is kept to the micro-dollar)."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not an amount of dollars") from None
    if not amount.is_finite() or amount < 0:
        raise typer.BadParameter(f"{text!r} is not an amount of dollars")
    return amount


def parse_usd(text: str) -> Decimal:
    """A dollar amount in whole cents, as a spend limit's ``threshold_amount`` is."""
    amount = parse_amount(text)
    try:
        usd_to_cents(amount)
    except ValueError:
        raise typer.BadParameter(f"{text} has a fraction of a cent; give whole cents") from None
    except ArithmeticError:
        raise typer.BadParameter(f"{text} has too many digits to be held exactly") from None
    return amount


def usd_to_cents(amount: Decimal) -> int:
    """Exact or not at all: ``ValueError`` for a fraction of a cent, ``decimal.Inexact`` for
    an amount longer than Decimal's 28 digits (a typo, at that size) rather than a rounding."""
    with localcontext() as context:
        context.traps[Inexact] = True
        cents = amount.scaleb(2)
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of cents")
    return int(cents)


def decimal_text(amount: Decimal) -> str:
    """How the API writes an amount: positional, at least to the cent (``10`` -> ``10.00``),
    never through a float."""
    text = f"{amount:f}"
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def parse_duration(text: str) -> int:
    """Seconds in a duration as ``switchyard usage --since`` takes it: ``30m``, ``12h``,
    ``30d``, ``2w``."""
    from services.metering.window import InvalidWindowError, parse_window

    try:
        return int(parse_window(text).total_seconds())
    except InvalidWindowError as exc:
        raise typer.BadParameter(str(exc).replace("window", "duration")) from None
