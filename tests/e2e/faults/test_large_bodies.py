"""Every body up to the documented limit works; above it, a 413 (issue item 7).

Long-context prompts are this product's users: a sealed body travels base64-encoded through
Kafka, whose broker, topic and producer limits are set together (contracts.topics
MAX_MESSAGE_BYTES) so that a body at ingress's 20 MiB limit fits.
"""

from __future__ import annotations

import base64
import uuid

import pytest

from services.stack import RunningStack
from tests.e2e.e2e_support import PNG_1X1
from tests.e2e.faults.fault_support import chat_body, ingress_client, post_chat, vendor_calls

pytestmark = pytest.mark.e2e

LIMIT = 20 * 1024 * 1024


def _words(size: int) -> str:
    """About ``size`` bytes of ordinary text (the simulator counts words as tokens)."""
    return ("lorem ipsum dolor sit amet " * (size // 27 + 1))[:size]


async def test_a_body_just_under_the_limit_is_answered(full_stack: RunningStack) -> None:
    """Most of the body is an image: text this long would be refused before any vendor call,
    since no model's context window holds 5 million tokens."""
    image = PNG_1X1 + bytes((LIMIT - 192 * 1024) * 3 // 4 - len(PNG_1X1))
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    body = chat_body("", max_tokens=5)
    body["messages"] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": f"big {uuid.uuid4().hex} " + _words(64 * 1024)},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]
    async with ingress_client(full_stack) as http:
        outcome = await post_chat(http, body)
    assert outcome.answered, (outcome.status, outcome.body)


async def test_a_text_prompt_no_window_holds_is_refused_before_any_vendor_call(
    full_stack: RunningStack,
) -> None:
    """20 MiB of text still crosses Kafka to the router, which refuses it by its size."""
    prompt = f"big {uuid.uuid4().hex} " + _words(LIMIT - 64 * 1024)
    async with ingress_client(full_stack) as http:
        calls_before = await vendor_calls(full_stack)
        outcome = await post_chat(http, chat_body(prompt, max_tokens=5))
        assert await vendor_calls(full_stack) == calls_before
    assert outcome.status == 400, outcome.body
    assert outcome.error_code == "context_length_exceeded"


async def test_many_messages_and_a_long_stop_string_are_answered(full_stack: RunningStack) -> None:
    run = uuid.uuid4().hex
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} of {run}"}
        for i in range(50_001)
    ]
    async with ingress_client(full_stack) as http:
        # About 700,000 prompt tokens: a model with a million-token window.
        many = await post_chat(
            http, {"model": "xai/grok-4.3", "messages": messages, "max_tokens": 5}
        )
        long_stop = await post_chat(
            http, chat_body(f"stop {run}", stop=_words(1024 * 1024), max_tokens=5)
        )
    assert many.answered, (many.status, many.body)
    assert long_stop.answered, (long_stop.status, long_stop.body)


async def test_a_body_over_the_limit_is_a_413(full_stack: RunningStack) -> None:
    prompt = _words(LIMIT + 1024)
    async with ingress_client(full_stack) as http:
        outcome = await post_chat(http, chat_body(prompt))
    assert outcome.status == 413, outcome.status
    assert outcome.body["error"]["type"] == "invalid_request_error"
