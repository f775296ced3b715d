"""What the simulated model answers: text, a tool call or a JSON document, with its usage.

Everything is derived from the conversation's digest, so the same conversation always gets the
same reply and the same token counts, under either protocol and from any process.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from services.vendorsim.conversation import Conversation, OutputFormat, ToolChoiceMode, ToolSpec
from services.vendorsim.directives import Directives
from services.vendorsim.tokens import count_prompt_tokens, count_text_tokens

# 64 plain words: one token each under the simulator's tokenizer, and a power of two so that the
# generator's top bits pick one without bias.
WORDS = (
    *("the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog"),
    *("river", "stone", "cloud", "light", "north", "south", "east", "west"),
    *("green", "amber", "silver", "quiet", "rapid", "gentle", "signal", "pattern"),
    *("garden", "harbor", "meadow", "forest", "summer", "winter", "spring", "autumn"),
    *("morning", "evening", "bright", "simple", "steady", "narrow", "wide", "little"),
    *("great", "small", "model", "router", "kafka", "stream", "token", "answer"),
    *("question", "window", "bridge", "engine", "vendor", "switch", "yard", "tower"),
    *("field", "ocean", "valley", "orbit", "pebble", "lantern", "copper", "maple"),
)

_FIRST = tuple(w.capitalize() for w in WORDS)
_NEXT = tuple(" " + w for w in WORDS)
# Streamed tool arguments and JSON documents arrive in pieces of this many characters.
FRAGMENT_CHARS = 12
_MAX_SCHEMA_DEPTH = 6


class Finish(Enum):
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALL = "tool_call"


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ToolCall:
    call_id: str  # unique within the reply, without the protocol's prefix
    name: str
    arguments: str  # a JSON object, as text

    @property
    def fragments(self) -> tuple[str, ...]:
        return _split(self.arguments)


@dataclass(frozen=True, slots=True)
class Reply:
    fragments: tuple[str, ...]  # the text, in the pieces a stream sends; empty for a tool call
    tool_call: ToolCall | None
    finish: Finish
    usage: Usage

    @property
    def text(self) -> str:
        return "".join(self.fragments)


class _Dice:
    """A 64-bit linear congruential generator: deterministic everywhere, and cheaper to seed per
    request than ``random.Random``."""

    __slots__ = ("_state",)

    def __init__(self, seed: bytes) -> None:
        self._state = int.from_bytes(seed[:8], "little")

    def next(self) -> int:
        self._state = (self._state * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        return self._state >> 32

    def word(self) -> int:
        return self.next() >> 26  # the top 6 of 32 bits: an index into WORDS


def plan_reply(
    conversation: Conversation, directives: Directives, *, output_tokens: int, digest: bytes
) -> Reply:
    """The reply to ``conversation``; ``output_tokens`` is the default length of a text reply."""
    prompt_tokens = count_prompt_tokens(conversation)
    cached = min(directives.cached_tokens, prompt_tokens)
    reasoning = directives.reasoning_tokens
    dice = _Dice(digest)

    tool = _chosen_tool(conversation, directives)
    if tool is not None:
        arguments = orjson.dumps(_sample(tool.parameters, dice, 0)).decode()
        call = ToolCall(call_id=digest[8:].hex(), name=tool.name, arguments=arguments)
        produced = count_text_tokens(tool.name) + count_text_tokens(arguments)
        usage = Usage(prompt_tokens, produced + reasoning, cached, reasoning)
        return Reply((), call, Finish.TOOL_CALL, usage)

    if conversation.output_format is not OutputFormat.TEXT:
        # JSON is never cut short by max_tokens: a truncated document helps no test.
        document: object
        if conversation.output_format is OutputFormat.JSON_SCHEMA and conversation.output_schema:
            document = _sample(conversation.output_schema, dice, 0)
        else:
            document = {"answer": _words(dice, min(output_tokens, 8))}
        text = orjson.dumps(document).decode()
        usage = Usage(prompt_tokens, count_text_tokens(text) + reasoning, cached, reasoning)
        return Reply(_split(text), None, Finish.STOP, usage)

    wanted = directives.tokens if directives.tokens is not None else output_tokens
    wanted = max(wanted, 1)
    limit = conversation.max_tokens
    finish = Finish.STOP
    if limit is not None and limit < wanted:
        wanted, finish = limit, Finish.LENGTH
    fragments = [_FIRST[dice.word()]]
    fragments.extend(_NEXT[dice.word()] for _ in range(wanted - 1))
    usage = Usage(prompt_tokens, wanted + reasoning, cached, reasoning)
    return Reply(tuple(fragments), None, finish, usage)


def _chosen_tool(conversation: Conversation, directives: Directives) -> ToolSpec | None:
    tools = conversation.tools
    if not tools or conversation.tool_choice is ToolChoiceMode.NONE:
        return None
    match conversation.tool_choice:
        case ToolChoiceMode.NAMED:
            wanted = conversation.tool_choice_name
        case ToolChoiceMode.REQUIRED:
            wanted = directives.tool_name
        case _ if directives.tool:
            wanted = directives.tool_name
        case _:
            return None
    return next((t for t in tools if t.name == wanted), tools[0])


def _words(dice: _Dice, count: int) -> str:
    return " ".join(WORDS[dice.word()] for _ in range(count))


def _sample(schema: Any, dice: _Dice, depth: int) -> object:
    """A value that fits the JSON schema ``schema``, as far as a simple reading of it goes."""
    if not isinstance(schema, dict) or depth > _MAX_SCHEMA_DEPTH:
        return WORDS[dice.word()]
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[dice.next() % len(enum)]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            return _sample(options[0], dice, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and isinstance(schema.get("properties"), dict):
        kind = "object"
    match kind:
        case "object":
            properties = schema.get("properties")
            if not isinstance(properties, dict):
                return {}
            return {name: _sample(sub, dice, depth + 1) for name, sub in properties.items()}
        case "array":
            return [_sample(schema.get("items"), dice, depth + 1)]
        case "integer":
            return dice.next() % 100
        case "number":
            return (dice.next() % 1000) / 10
        case "boolean":
            return bool(dice.next() & 1)
        case "null":
            return None
        case _:
            return WORDS[dice.word()]


def _split(text: str) -> tuple[str, ...]:
    return tuple(text[i : i + FRAGMENT_CHARS] for i in range(0, len(text), FRAGMENT_CHARS))
