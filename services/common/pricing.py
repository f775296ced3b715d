"""Pricing: what one usage event (or one answer's usage) costs, from the model card's
per-million-token prices.

Cost is exact: prices are Decimals per 1,000,000 tokens and every product and sum stays a Decimal,
unrounded. Rounding happens once, when a row is stored (see ``rows.COST_SCALE``).

An attempt is charged for the usage it carries, whatever its status: a stream the vendor cut after
delivering output carries what was delivered (the vendor's usage, or Switchyard's count marked
``usage_estimated``), and is charged for it. The worker decides what a failed attempt carries; one
that consumed nothing carries no tokens, and so costs nothing: the caller is not charged for a
vendor's failure, only for what it received. Such a zero-usage failure is priced (at zero) even
without a card, as it always was: there is nothing in it to re-price.

A batch line (an event with a ``batch_id``) is priced at the vendor's batch prices where the
card lists them (``Prices.for_batch``), as the vendor's own batch API would charge it.

An event whose model has no card, or whose card lacks a price the event needs, costs nothing and is
marked unpriced, so that it can be found and re-priced once the catalogue knows the price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from contracts.catalogue import ModelCard, Prices
from contracts.chat import Usage
from contracts.replies import OutcomeStatus
from contracts.usage import UsageEvent

_PER_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
_NO_USAGE = Usage()


@dataclass(frozen=True, slots=True)
class Pricing:
    cost_usd: Decimal
    priced: bool
    # The same tokens as if none had come from the cache: what the cache saved is the difference.
    uncached_usd: Decimal = _ZERO


FREE = Pricing(cost_usd=_ZERO, priced=True)
UNPRICED = Pricing(cost_usd=_ZERO, priced=False)


def price(event: UsageEvent, card: ModelCard | None) -> Pricing:
    """A batch line (``batch_id`` set) pays the vendor's batch prices where the card has them,
    as the vendor's own batch API would charge; any other call the usual prices."""
    if event.status is not OutcomeStatus.OK and event.usage == _NO_USAGE:
        return FREE
    if card is None or not card.priced:
        return UNPRICED
    prices = (event.batch_id and card.prices.for_batch()) or card.prices
    cost = _cost(event.usage, prices)
    if cost is None:
        return UNPRICED
    uncached = _cost(event.usage, prices, without_cache=True)
    return Pricing(cost_usd=cost, priced=True, uncached_usd=cost if uncached is None else uncached)


def usage_cost(
    usage: Usage, card: ModelCard | None, *, without_cache: bool = False
) -> Decimal | None:
    """What ``usage`` of the model costs at its usual prices, exactly; None when a price it
    needs is unknown. Also what ingress shrinks a request's credit hold to once the answer is
    in. ``without_cache``: every input token at the input price, as if the cache had held
    nothing."""
    if card is None or not card.priced:
        return None
    return _cost(usage, card.prices, without_cache=without_cache)


def _cost(usage: Usage, prices: Prices, *, without_cache: bool = False) -> Decimal | None:
    cache_read, cache_write = (
        (0, 0) if without_cache else (usage.cache_read_tokens, usage.cache_write_tokens)
    )
    # ``input_tokens`` counts the cached tokens too; only the rest is billed at the input price.
    uncached = max(usage.input_tokens - cache_read - cache_write, 0)
    lines = (
        (uncached, prices.input),
        (cache_read, _cache_price(prices.cache_read, prices)),
        (cache_write, _cache_price(prices.cache_write, prices)),
        (usage.output_tokens, prices.output),
    )
    cost = _ZERO
    for tokens, per_million in lines:
        if tokens == 0:
            continue  # an unpriced kind of token that was not used does not make the call unpriced
        if per_million is None:
            return None
        cost += tokens * per_million
    return cost / _PER_MILLION


def _cache_price(specific: Decimal | None, prices: Prices) -> Decimal | None:
    # Vendors without a separate cache price bill cached tokens as ordinary input.
    return specific if specific is not None else prices.input
