"""Usage estimates: the tokens of an attempt the vendor never reported usage for.

A stream the vendor cut (a dropped connection, a malformed event) has delivered output that cost
the vendor money, yet its usage arrives, if at all, in the last event, which never came. The
worker then charges what was delivered by counting it here, and marks the usage event
``usage_estimated``. Counting happens only for such failed streams, so it is off the common path,
but it still runs inside the worker's event loop and must be fast.

Tokenizer: ``services.common.tokens``. Every vendor is counted with ``o200k_base``, OpenAI's
current encoding. Other vendors' tokenizers
are not public (Anthropic, Gemini) or not shipped offline; for them this is an approximation,
which is what ``usage_estimated`` says. The prompt rule follows OpenAI's published accounting for
chat models, the rest are documented guesses:

- each message (the system prompt included) costs ``MESSAGE_OVERHEAD`` plus its content, and
  ``NAME_OVERHEAD`` more if it has a ``name``; every prompt adds ``REPLY_PRIMING``;
- text parts, tool-call names and arguments, and tool results count as their text;
- an image counts ``IMAGE_TOKENS_LOW`` at ``detail="low"``, else ``IMAGE_TOKENS``: the image's
  size is not known without decoding it, and 765 is OpenAI's price of a 1024x1024 image at high
  detail (Anthropic bills such an image ~1,400, Gemini 258);
- a tool definition counts as its JSON plus ``TOOL_OVERHEAD``; a JSON-schema response format as
  its schema's JSON. Vendors render both their own way, so this is the roughest part.

Cache tokens are never estimated (a cut stream does not say what was cached), and neither are
hidden reasoning tokens: only what the vendor sent can be counted.
"""

from __future__ import annotations

import orjson

from contracts.chat import (
    ChatRequest,
    ImagePart,
    Message,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from services.common.tokens import ENCODING, count_text_tokens

__all__ = [
    "ENCODING",
    "IMAGE_TOKENS",
    "IMAGE_TOKENS_LOW",
    "MESSAGE_OVERHEAD",
    "NAME_OVERHEAD",
    "REPLY_PRIMING",
    "TOOL_OVERHEAD",
    "count_text_tokens",
    "estimate_completion_tokens",
    "estimate_prompt_tokens",
    "estimate_usage",
]

MESSAGE_OVERHEAD = 4  # OpenAI: 3 framing tokens per message, plus 1 for the role
NAME_OVERHEAD = 1
REPLY_PRIMING = 3
IMAGE_TOKENS = 765
IMAGE_TOKENS_LOW = 85
TOOL_OVERHEAD = 8


def estimate_prompt_tokens(chat: ChatRequest) -> int:
    """Prompt tokens of ``chat`` under the rule in the module docstring."""
    total = REPLY_PRIMING
    if chat.system:
        total += MESSAGE_OVERHEAD + count_text_tokens(chat.system)
    for message in chat.messages:
        total += _message_tokens(message)
    for tool in chat.tools:
        total += _tool_tokens(tool)
    if chat.response_format is not None and chat.response_format.json_schema is not None:
        total += count_text_tokens(orjson.dumps(chat.response_format.json_schema).decode())
    return total


def estimate_completion_tokens(completion_text: str, tool_call_args: str = "") -> int:
    """Output tokens of what the vendor sent: the text, and the tool calls' names and arguments
    as one string (their fragments concatenated in arrival order)."""
    return count_text_tokens(completion_text) + count_text_tokens(tool_call_args)


def estimate_usage(chat: ChatRequest, completion_text: str, tool_call_args: str = "") -> Usage:
    """The usage of an attempt that sent ``completion_text`` (and ``tool_call_args``) in answer
    to ``chat``, for when the vendor did not report it. The event that carries it must set
    ``usage_estimated``."""
    return Usage(
        input_tokens=estimate_prompt_tokens(chat),
        output_tokens=estimate_completion_tokens(completion_text, tool_call_args),
    )


def _message_tokens(message: Message) -> int:
    total = MESSAGE_OVERHEAD
    if message.name:
        total += NAME_OVERHEAD + count_text_tokens(message.name)
    for part in message.content:
        match part:
            case TextPart():
                total += count_text_tokens(part.text)
            case ImagePart():
                total += _image_tokens(part)
            case ToolCallPart():
                total += count_text_tokens(part.name) + count_text_tokens(part.arguments)
            case ToolResultPart():
                for inner in part.content:
                    if isinstance(inner, TextPart):
                        total += count_text_tokens(inner.text)
                    else:
                        total += _image_tokens(inner)
    return total


def _image_tokens(image: ImagePart) -> int:
    # Never the URL's text: a data URL is megabytes of base64 the vendor does not bill as text.
    return IMAGE_TOKENS_LOW if image.detail == "low" else IMAGE_TOKENS


def _tool_tokens(tool: ToolSpec) -> int:
    definition = orjson.dumps(tool.model_dump(exclude_none=True)).decode()
    return TOOL_OVERHEAD + count_text_tokens(definition)
