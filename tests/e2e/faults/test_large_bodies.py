"""Every body up to the documented limit works; above it, a 413 (issue item 7).

Long-context prompts are this product's users: a sealed body travels base64-encoded through
Kafka, whose broker, topic and producer limits are set together (contracts.topics
MAX_MESSAGE_BYTES) so that a body at ingress's 20 MiB limit fits.
"""

from __future__ import annotations

import uuid

import pytest

from services.stack import RunningStack
from tests.e2e.faults.fault_support import chat_body, ingress_client, post_chat

pytestmark = pytest.mark.e2e

LIMIT = 20 * 1024 * 1024


def _words(size: int) -> str:
    """About ``size`` bytes of ordinary text (the simulator counts words as tokens)."""
    return ("lorem ipsum dolor sit amet " * (size // 27 + 1))[:size]


async def test_a_body_just_under_the_limit_is_answered(full_stack: RunningStack) -> None:
    prompt = f"big {uuid.uuid4().hex} " + _words(LIMIT - 64 * 1024)
    async with ingress_client(full_stack) as http:
        outcome = await post_chat(http, chat_body(prompt, max_tokens=5))
    assert outcome.answered, (outcome.status, outcome.body)


async def test_many_messages_and_a_long_stop_string_are_answered(full_stack: RunningStack) -> None:
    run = uuid.uuid4().hex
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} of {run}"}
        for i in range(100_001)
    ]
    async with ingress_client(full_stack) as http:
        many = await post_chat(
            http, {"model": "openai/gpt-4o-mini", "messages": messages, "max_tokens": 5}
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
