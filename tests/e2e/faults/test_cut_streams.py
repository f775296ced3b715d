"""Streams the vendor cuts are charged for what they delivered (issue item 3).

The vendor produced output, and bills for it, but its usage figures come in the last event,
which never arrives. What must hold: the attempt's usage row carries the delivered tokens,
counted with a tokenizer and marked ``usage_estimated``, at a price above zero; the stream is
not retried once output reached the caller (one vendor call); and the caller's stream ends
with an error event, never a silent splice.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import orjson
import pytest

from services.stack import RunningStack
from tests.e2e.e2e_support import Metering
from tests.e2e.faults.fault_support import chat_body, ingress_client, vendor_calls

pytestmark = pytest.mark.e2e


async def _stream(http: httpx.AsyncClient, prompt: str) -> tuple[str, list[str], list[object]]:
    """The request id, the content pieces the caller received, and any error events."""
    texts: list[str] = []
    errors: list[object] = []
    async with http.stream(
        "POST", "/v1/chat/completions", json=chat_body(prompt, stream=True)
    ) as response:
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = orjson.loads(line.removeprefix("data: "))
            if "error" in event:
                errors.append(event["error"])
                continue
            for choice in event.get("choices", []):
                texts.append(choice["delta"].get("content") or "")
    return request_id, texts, errors


@pytest.mark.parametrize("fault", ["disconnect", "malformed"])
async def test_a_cut_stream_is_charged_its_delivered_tokens_once(
    full_stack: RunningStack, metering: Metering, fault: str
) -> None:
    prompt = f"cut stream {uuid.uuid4().hex} [sim:tokens=80] [sim:{fault}]"
    async with ingress_client(full_stack) as http:
        calls_before = await vendor_calls(full_stack)
        request_id, texts, errors = await _stream(http, prompt)
        calls = await vendor_calls(full_stack) - calls_before

    delivered = "".join(texts)
    print(
        f"\n{fault}: {len(texts)} chunks delivered, {len(errors)} error event(s), {calls} call(s)"
    )
    assert delivered, "the vendor cut the stream before any content"
    assert len(errors) == 1, errors
    assert calls == 1, "a stream that had delivered output was retried"

    rows = metering.wait_rows(request_id)
    assert len(rows) == 1, rows
    [row] = rows
    assert row["status"] == "error"
    assert row["usage_estimated"] is True, row
    assert row["output_tokens"] > 0, row
    assert row["input_tokens"] > 0, row
    assert row["priced"] is True
    assert Decimal(row["cost_usd"]) > 0, row


async def test_a_stream_refused_before_any_output_costs_nothing(
    full_stack: RunningStack, metering: Metering
) -> None:
    prompt = f"refused stream {uuid.uuid4().hex} [sim:fail=400]"
    async with ingress_client(full_stack) as http:
        response = await http.post("/v1/chat/completions", json=chat_body(prompt, stream=True))
    assert response.status_code == 400
    rows = metering.wait_rows(response.headers["x-request-id"])
    assert len(rows) == 1, rows
    assert rows[0]["usage_estimated"] is False
    assert rows[0]["output_tokens"] == 0
    assert Decimal(rows[0]["cost_usd"]) == 0
