"""Usage estimates for streams the vendor cut: real o200k_base counts, offline, fast."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from contracts.chat import ChatRequest, Usage
from services.workers.estimate import (
    IMAGE_TOKENS,
    IMAGE_TOKENS_LOW,
    MESSAGE_OVERHEAD,
    REPLY_PRIMING,
    TOOL_OVERHEAD,
    count_text_tokens,
    estimate_completion_tokens,
    estimate_prompt_tokens,
    estimate_usage,
)


def chat(*messages: dict[str, Any], **fields: Any) -> ChatRequest:
    return ChatRequest.model_validate({"messages": list(messages), **fields})


def user(*parts: dict[str, Any] | str, name: str | None = None) -> dict[str, Any]:
    content = [{"type": "text", "text": p} if isinstance(p, str) else p for p in parts]
    return {"role": "user", "content": content, "name": name}


EMPTY_USER_MESSAGE = REPLY_PRIMING + MESSAGE_OVERHEAD


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("hello world", 2),  # o200k_base [24912, 2375], as tiktoken encodes it
        ("What is the capital of France?", 7),
        ('{"city":"Paris"}', 5),
        ("<|endoftext|>", 7),  # a special token's text is ordinary text inside a message
    ],
)
def test_counts_o200k_tokens(text: str, tokens: int) -> None:
    assert count_text_tokens(text) == tokens


def test_counts_with_no_network() -> None:
    # A fresh interpreter with sockets disabled: tiktoken would try to download its vocabulary
    # here and fail; the estimate must not need the network, ever.
    script = textwrap.dedent(
        """
        import socket

        def refuse(*args, **kwargs):
            raise OSError("network disabled by the test")

        socket.socket = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from services.workers.estimate import count_text_tokens
        print(count_text_tokens("hello world"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "2"), done.stderr


def test_a_lone_surrogate_is_counted_not_raised() -> None:
    # json.loads('"\\ud800"') yields one; the tokenizer itself takes only UTF-8.
    assert count_text_tokens("hello\ud800world") == count_text_tokens("hello\ufffdworld")


def test_prompt_matches_openais_count_for_gpt_4o() -> None:
    # The OpenAI cookbook's example ("How to count tokens with tiktoken"): the API reported 124
    # prompt tokens for it on gpt-4o and gpt-4o-mini. Its named examples are system messages
    # there; the role is one token either way.
    request = chat(
        user("New synergies will help drive top-line growth.", name="example_user"),
        user("Things working well together will increase revenue.", name="example_assistant"),
        user(
            "Let's circle back when we have more bandwidth to touch base on opportunities for"
            " increased leverage.",
            name="example_user",
        ),
        user(
            "Let's talk later when we're less busy about how to do better.",
            name="example_assistant",
        ),
        user(
            "This late pivot means we don't have time to boil the ocean for the client deliverable."
        ),
        system="You are a helpful, pattern-following assistant that translates corporate jargon"
        " into plain English.",
    )

    assert estimate_prompt_tokens(request) == 124


def test_every_kind_of_part_counts() -> None:
    base = estimate_prompt_tokens(chat(user()))
    assert base == EMPTY_USER_MESSAGE == 7

    def cost_of(*parts: dict[str, Any]) -> int:
        return estimate_prompt_tokens(chat(user(*parts))) - base

    assert cost_of({"type": "text", "text": "hello world"}) == 2
    tool_call = {
        "type": "tool_call",
        "id": "c1",
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    }
    assert cost_of(tool_call) == 2 + 5
    result = {"type": "tool_result", "tool_call_id": "c1", "content": [{"text": "hello world"}]}
    assert cost_of(result) == 2
    with_image = {
        "type": "tool_result",
        "tool_call_id": "c1",
        "content": [{"type": "image", "url": "https://example.test/a.png", "detail": "low"}],
    }
    assert cost_of(with_image) == IMAGE_TOKENS_LOW


def test_an_image_costs_a_fixed_estimate_never_its_base64() -> None:
    data_url = "data:image/png;base64," + "iVBORw0KGgo" * 200_000  # ~2 MB of base64
    base = estimate_prompt_tokens(chat(user()))

    high = estimate_prompt_tokens(chat(user({"type": "image", "url": data_url})))
    low = estimate_prompt_tokens(chat(user({"type": "image", "url": data_url, "detail": "low"})))

    assert (high - base, low - base) == (IMAGE_TOKENS, IMAGE_TOKENS_LOW) == (765, 85)


def test_system_name_tools_and_schema_count() -> None:
    base = estimate_prompt_tokens(chat(user("hello world")))
    weather = {
        "name": "get_weather",
        "description": "Weather now",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }

    assert estimate_prompt_tokens(chat(user("hello world"), system="You are terse.")) == (
        base + MESSAGE_OVERHEAD + 4
    )
    # a name costs its tokens plus one
    assert estimate_prompt_tokens(chat(user("hello world", name="alice"))) == base + 1 + 1
    # the definition as JSON, 26 tokens, plus the per-tool overhead
    assert estimate_prompt_tokens(chat(user("hello world"), tools=[weather])) == (
        base + TOOL_OVERHEAD + 26
    )
    schema_format = {"type": "json_schema", "json_schema": {"type": "object"}}
    assert estimate_prompt_tokens(chat(user("hello world"), response_format=schema_format)) > base


def test_usage_counts_what_was_delivered_and_nothing_cached() -> None:
    request = chat(user("What is the capital of France?"))

    usage = estimate_usage(request, "The capital of France is", " Paris.")

    assert usage == Usage(input_tokens=EMPTY_USER_MESSAGE + 7, output_tokens=5 + 2)
    assert estimate_usage(request, "") == Usage(input_tokens=14, output_tokens=0)
    assert estimate_completion_tokens("", 'get_weather{"city":"Paris"}') > 0


def test_a_long_prompt_is_counted_whole() -> None:
    # Longer than the tiktoken-style wrapper accepts (1,000,000 characters): the native counter
    # takes it. How fast is a benchmark's question, not this test's.
    chapter = "The quick brown fox jumps over the lazy dog, again and again. " * 16_000  # ~1 MB
    request = chat(*(user(chapter) for _ in range(4)))

    usage = estimate_usage(request, chapter)

    assert usage.input_tokens > 4 * 200_000
    assert usage.output_tokens == count_text_tokens(chapter)
