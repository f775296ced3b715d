"""The documented token-counting rule, which other tests of the project rely on."""

from __future__ import annotations

import pytest

from services.vendorsim import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    PROMPT_OVERHEAD,
    TOOL_OVERHEAD,
    count_prompt_tokens,
    count_text_tokens,
)
from services.vendorsim.conversation import Conversation, ToolSpec, Turn
from services.vendorsim.protocols.anthropic import AnthropicMessages
from services.vendorsim.protocols.openai import OpenAIChat
from services.vendorsim.reply import WORDS


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("Hello, world!", 4),
        ("  spaces   are\tfree\n", 3),
        ("don't", 3),
        ('{"a": [1, 2]}', 11),
        ("naïve café", 2),
    ],
)
def test_text_tokens_are_words_and_punctuation(text: str, tokens: int) -> None:
    assert count_text_tokens(text) == tokens


def test_prompt_tokens_follow_the_documented_formula() -> None:
    conversation = Conversation(
        model="m",
        turns=(Turn("system", "Be brief."), Turn("user", "Look at this:", images=2)),
        tools=(ToolSpec("lookup", "Find a thing", {"type": "object"}),),
    )
    expected = (
        PROMPT_OVERHEAD
        + (MESSAGE_OVERHEAD + 3)
        + (MESSAGE_OVERHEAD + 4 + 2 * IMAGE_TOKENS)
        # name 1, description 3, '{"type":"object"}' 9
        + (TOOL_OVERHEAD + 1 + 3 + 9)
    )
    assert count_prompt_tokens(conversation) == expected


def test_one_conversation_counts_the_same_under_both_protocols() -> None:
    openai_body = (
        b'{"model": "m", "messages": [{"role": "system", "content": "Be terse."},'
        b'{"role": "user", "content": [{"type": "text", "text": "What is this?"},'
        b'{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}'
    )
    anthropic_body = (
        b'{"model": "m", "max_tokens": 5, "system": "Be terse.", "messages": [{"role": "user",'
        b'"content": [{"type": "text", "text": "What is this?"}, {"type": "image", "source":'
        b'{"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]}'
    )
    from_openai = count_prompt_tokens(OpenAIChat().parse(openai_body))
    from_anthropic = count_prompt_tokens(AnthropicMessages().parse(anthropic_body))
    assert from_openai == from_anthropic == PROMPT_OVERHEAD + 2 * MESSAGE_OVERHEAD + 3 + 4 + 85


def test_every_reply_word_is_one_token() -> None:
    assert len(set(WORDS)) == 64
    assert all(count_text_tokens(word) == 1 for word in WORDS)
