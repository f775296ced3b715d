"""The ``usage_events`` row: how a priced ``UsageEvent`` is flattened into the table's columns.

The column order here is the insert order; the table itself is defined by the migrations.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from contracts.usage import UsageEvent
from services.common.pricing import Pricing

# Cost is stored as Decimal(38, 12). Pricing keeps full precision; this is the one place it is
# rounded. ClickHouse would truncate extra digits silently, so round here, on purpose, half-even.
COST_SCALE = Decimal("1e-12")

COLUMNS: tuple[str, ...] = (
    "event_id",
    "request_id",
    "attempt",
    "ts",
    "tenant",
    "key_id",
    "user_tag",
    "protocol",
    "mode",
    "lane",
    "provider",
    "model",
    "requested_model",
    "task_type",
    "difficulty",
    "policy",
    "route_reason",
    "status",
    "error_class",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "usage_estimated",
    "cost_usd",
    "cost_uncached_usd",
    "priced",
    "price_version",
    "queue_ms",
    "ttft_ms",
    "vendor_ms",
    "total_ms",
    "overhead_ms",
    "simulated",
    "batch_id",
    "tags",
)


def stored_cost(cost_usd: Decimal) -> Decimal:
    return cost_usd.quantize(COST_SCALE, rounding=ROUND_HALF_EVEN)


def to_row(event: UsageEvent, pricing: Pricing, price_version: str) -> list[Any]:
    usage, timings = event.usage, event.timings
    return [
        event.event_id,
        event.request_id,
        event.attempt,
        _utc(event.ts_ms),
        event.tenant,
        event.key_id,
        event.user_tag,
        event.protocol.value,
        event.mode.value,
        event.lane.value,
        event.provider,
        event.model,
        event.requested_model,
        event.task_type,
        event.difficulty,
        event.policy,
        event.route_reason,
        event.status.value,
        event.error_class.value if event.error_class is not None else "",
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
        event.usage_estimated,
        stored_cost(pricing.cost_usd),
        stored_cost(max(pricing.uncached_usd, pricing.cost_usd)),
        pricing.priced,
        price_version,
        timings.queue_ms,
        timings.ttft_ms,
        timings.vendor_ms,
        timings.total_ms,
        timings.overhead_ms,
        event.simulated,
        event.batch_id or "",
        dict(event.tags),
    ]


def _utc(ts_ms: int) -> datetime:
    # Integer arithmetic: a float division would blur the milliseconds of a 13-digit timestamp.
    seconds, millis = divmod(ts_ms, 1000)
    return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(milliseconds=millis)
