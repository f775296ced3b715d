"""How the simulator counts tokens: a documented, deterministic rule other tests can rely on.

- Text: every run of word characters (``\\w+``) is one token, and so is every other
  non-space character. ``"Hello, world!"`` is 4 tokens; whitespace is free.
- A prompt: ``PROMPT_OVERHEAD`` + for each message ``MESSAGE_OVERHEAD`` + the tokens of its text
  (tool calls and tool results included) + ``IMAGE_TOKENS`` per image; a system prompt counts as
  a message. Each tool definition adds ``TOOL_OVERHEAD`` + the tokens of its name, description
  and JSON-schema parameters (serialised with ``orjson``; key order and spacing do not matter).
- A reply: one token per word of plain text; for a tool call or JSON output, the tokens of the
  text produced (function name plus arguments, or the JSON document).
"""

from __future__ import annotations

import re

import orjson

from services.vendorsim.conversation import Conversation, ToolSpec

MESSAGE_OVERHEAD = 4
PROMPT_OVERHEAD = 3
IMAGE_TOKENS = 85
TOOL_OVERHEAD = 8

_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_text_tokens(text: str) -> int:
    """Tokens in ``text`` under the rule in the module docstring."""
    return len(_TOKEN.findall(text))


def count_tool_tokens(tool: ToolSpec) -> int:
    schema = orjson.dumps(tool.parameters).decode() if tool.parameters else ""
    return (
        TOOL_OVERHEAD
        + count_text_tokens(tool.name)
        + count_text_tokens(tool.description)
        + count_text_tokens(schema)
    )


def count_prompt_tokens(conversation: Conversation) -> int:
    """Prompt tokens the simulator reports for ``conversation``, under either protocol."""
    total = PROMPT_OVERHEAD
    for turn in conversation.turns:
        total += MESSAGE_OVERHEAD + count_text_tokens(turn.text) + IMAGE_TOKENS * turn.images
    for tool in conversation.tools:
        total += count_tool_tokens(tool)
    return total
