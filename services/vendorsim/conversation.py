"""The protocol-neutral view of a chat request that the simulator acts on.

Each wire protocol parses its body into a ``Conversation``; token counting, directives, reply
planning and fault decisions work on this view only, so the OpenAI and Anthropic endpoints behave
identically for the same conversation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class ToolChoiceMode(Enum):
    AUTO = "auto"
    NONE = "none"
    REQUIRED = "required"  # any tool: OpenAI "required", Anthropic {"type": "any"}
    NAMED = "named"  # one named tool


class OutputFormat(Enum):
    TEXT = "text"
    JSON_OBJECT = "json_object"
    JSON_SCHEMA = "json_schema"


@dataclass(frozen=True, slots=True)
class Turn:
    """One message. ``text`` joins every textual part with newlines, tool calls and tool results
    included, so it is what tokens are counted over."""

    role: str
    text: str
    images: int = 0


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Conversation:
    model: str
    turns: tuple[Turn, ...]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoiceMode = ToolChoiceMode.AUTO
    tool_choice_name: str | None = None
    max_tokens: int | None = None
    output_format: OutputFormat = OutputFormat.TEXT
    output_schema: dict[str, Any] | None = None
    stream: bool = False
    # OpenAI only: whether a streamed reply ends with a usage chunk.
    include_usage: bool = False

    @property
    def directive_text(self) -> str:
        """Where ``[sim:...]`` directives are read: the final message, when it is the user's.

        A turn that only hands back tool results carries no text of its own, so a conversation
        started with ``[sim:tool]`` gets a plain answer after one tool round instead of looping.
        """
        if not self.turns or self.turns[-1].role != "user":
            return ""
        return self.turns[-1].text

    def digest(self) -> bytes:
        """A hash of everything said in the conversation (not the model or the parameters): the
        seed of the reply and the key of the ``fail=...xN`` counter."""
        h = hashlib.blake2b(digest_size=16)
        for turn in self.turns:
            h.update(turn.role.encode())
            h.update(b"\x00")
            h.update(turn.text.encode("utf-8", "surrogatepass"))
            h.update(b"\x01%d\x00" % turn.images)
        return h.digest()
