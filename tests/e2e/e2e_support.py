"""What the end-to-end tests share: exact expectations computed from the vendor simulator's
documented token rule and the catalogue's prices, and a reader of the usage rows metering stored.

Usage lands asynchronously (worker -> Kafka -> metering -> ClickHouse), so the readers poll until
the rows a test expects have arrived, up to a bound; they never measure how long that took.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
from openai.types.chat import ChatCompletionFunctionToolParam

from contracts.catalogue import default_catalogue
from services.vendorsim import count_prompt_tokens, count_text_tokens
from services.vendorsim.conversation import Conversation, ToolSpec, Turn

Row = dict[str, Any]

# How long usage may take to reach ClickHouse before a test gives up on it.
USAGE_WAIT_S = 30.0
_POLL_S = 0.25
_PER_MILLION = Decimal(1_000_000)
# The precision of usage_events.cost_usd (Decimal(38, 12)).
_COST_SCALE = Decimal("1e-12")

# A valid 1x1 transparent PNG.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
PNG_DATA_URL = "data:image/png;base64," + base64.b64encode(PNG_1X1).decode()

WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}


def unique(label: str) -> str:
    """A prompt prefix no other call of this session uses: the simulator keys its replies and
    its ``fail=...xN`` counters on the conversation, so tests must not share one."""
    return f"{label} {uuid.uuid4().hex}"


def sim_prompt_tokens(
    *texts: str, images: int = 0, tools: Sequence[ChatCompletionFunctionToolParam] = ()
) -> int:
    """The prompt tokens the simulator reports for messages with these texts (one per message;
    roles do not change the count), ``images`` images in all, and these OpenAI tool definitions."""
    turns = [Turn(role="user", text=text) for text in texts]
    if images:
        turns[-1] = Turn(role="user", text=texts[-1], images=images)
    specs = tuple(
        ToolSpec(
            name=tool["function"]["name"],
            description=tool["function"].get("description") or "",
            parameters=dict(tool["function"].get("parameters") or {}),
        )
        for tool in tools
    )
    return count_prompt_tokens(Conversation(model="any", turns=tuple(turns), tools=specs))


def sim_tool_call_tokens(name: str, arguments: str) -> int:
    """Completion tokens of a simulated tool call: its name plus its JSON arguments."""
    return count_text_tokens(name) + count_text_tokens(arguments)


def expected_cost(
    canonical_id: str, *, input_tokens: int, output_tokens: int, cached_tokens: int = 0
) -> Decimal:
    """What an ok attempt costs under the catalogue's prices, at the stored precision."""
    card = default_catalogue().get(canonical_id)
    assert card is not None, canonical_id
    prices = card.prices
    assert prices.input is not None
    assert prices.output is not None
    cache_read = prices.cache_read if prices.cache_read is not None else prices.input
    cost = (
        (input_tokens - cached_tokens) * prices.input
        + cached_tokens * cache_read
        + output_tokens * prices.output
    ) / _PER_MILLION
    return cost.quantize(_COST_SCALE, rounding=ROUND_HALF_EVEN)


def _enough(count: int) -> Callable[[list[Row]], bool]:
    return lambda rows: len(rows) >= count


class Metering:
    """Reads ``GET /v1/usage/events`` of the stack's metering service."""

    def __init__(self, port: int, admin_key: str) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.headers = {"authorization": f"Bearer {admin_key}"}

    def rows(self, request_id: str) -> list[Row]:
        response = httpx.get(
            f"{self.base_url}/v1/usage/events",
            params={"request_id": request_id},
            headers=self.headers,
            timeout=10.0,
            trust_env=False,
        )
        response.raise_for_status()
        body = response.json()
        assert body["request_id"] == request_id
        rows: list[Row] = body["rows"]
        return rows

    def wait_rows(
        self, request_id: str, count: int = 1, timeout_s: float = USAGE_WAIT_S
    ) -> list[Row]:
        """The request's rows once at least ``count`` have arrived, or whatever arrived by the
        deadline (the caller's assertion then says what is missing)."""
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.rows(request_id)
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(_POLL_S)

    async def rows_async(self, client: httpx.AsyncClient, request_id: str) -> list[Row]:
        response = await client.get(
            f"{self.base_url}/v1/usage/events",
            params={"request_id": request_id},
            headers=self.headers,
        )
        response.raise_for_status()
        rows: list[Row] = response.json()["rows"]
        return rows

    async def wait_all_ok_async(
        self, request_ids: Sequence[str], timeout_s: float
    ) -> dict[str, list[Row]]:
        """Rows of every request, once each has an ok row or the deadline passed."""
        found: dict[str, list[Row]] = {}
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
            pending = list(request_ids)
            while True:
                for request_id in pending:
                    found[request_id] = await self.rows_async(client, request_id)
                pending = [
                    rid for rid in pending if not any(r["status"] == "ok" for r in found[rid])
                ]
                if not pending or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            # A last read of every request: a duplicate that landed after its first row counts.
            for request_id in request_ids:
                found[request_id] = await self.rows_async(client, request_id)
        return found


def assert_openai_error(body: Any, *, status_type: str, param: str | None = None) -> None:
    """``body`` is OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) >= {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["type"] == status_type, error
    assert isinstance(error["code"], str)
    if param is not None:
        assert error["param"] == param, error


def assert_ok_row(
    row: Row,
    *,
    request_id: str,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
) -> None:
    """One successful, simulated attempt, priced exactly (and above zero) from the catalogue."""
    assert row["request_id"] == request_id
    assert row["status"] == "ok", row
    assert row["error_class"] == "", row
    assert row["provider"] == provider
    assert row["model"] == model
    assert row["input_tokens"] == input_tokens
    assert row["output_tokens"] == output_tokens
    assert row["cache_read_tokens"] == cached_tokens
    assert row["simulated"] is True
    assert row["priced"] is True
    cost = Decimal(row["cost_usd"])
    assert cost > 0
    assert cost == expected_cost(
        model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
    )


def assert_unpriced_failure(row: Row, *, request_id: str, error_class: str) -> None:
    """A failed attempt: recorded, classified, and not charged."""
    assert row["request_id"] == request_id
    assert row["status"] == "error", row
    assert row["error_class"] == error_class, row
    assert Decimal(row["cost_usd"]) == 0


def single_ok_row(
    metering: Metering,
    *,
    request_id: str,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
) -> Row:
    """The request's only usage row, checked like ``assert_ok_row``."""
    rows = metering.wait_rows(request_id)
    assert len(rows) == 1, rows
    assert_ok_row(
        rows[0],
        request_id=request_id,
        provider=provider,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
    )
    return rows[0]
