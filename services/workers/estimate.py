"""Usage estimates: the tokens of an attempt the vendor never reported usage for.

A stream the vendor cut (a dropped connection, a malformed event) has delivered output that cost
the vendor money, yet its usage arrives, if at all, in the last event, which never came. The
worker then charges what was delivered by counting it here, and marks the usage event
``usage_estimated``. Counting happens only for such failed streams, so it is off the common path,
but it still runs inside the worker's event loop and must be fast.

Tokenizer: ``bpe-openai`` (GitHub's ``bpe-openai`` Rust crate behind Python bindings). Its wheels
carry the ``o200k_base`` and ``cl100k_base`` vocabularies compiled in, so it counts with no
network at all; ``tiktoken`` downloads its BPE files on first use, which a machine that reaches
only package registries cannot do. Its counts match tiktoken's (``"hello world"`` is
``[24912, 2375]`` in o200k_base, as in tiktoken). Wheels are abi3 for CPython >= 3.9 on manylinux
x86_64/aarch64, macOS arm64 and Windows. We call its native tokenizer
(``bpe_openai._bindings``, typed by the package's own ``.pyi``), not the tiktoken-style
``Encoding`` wrapper: the native one counts without building the token list, and the wrapper
refuses texts of 1,000,000 characters or 200,000 tokens, which a long-context prompt can exceed.

Every vendor is counted with ``o200k_base``, OpenAI's current encoding. Other vendors' tokenizers
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

import functools
import importlib
import warnings
from typing import Protocol

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

ENCODING = "o200k_base"
MESSAGE_OVERHEAD = 4  # OpenAI: 3 framing tokens per message, plus 1 for the role
NAME_OVERHEAD = 1
REPLY_PRIMING = 3
IMAGE_TOKENS = 765
IMAGE_TOKENS_LOW = 85
TOOL_OVERHEAD = 8


class _Tokenizer(Protocol):
    def count(self, text: str) -> int: ...


@functools.cache
def _tokenizer() -> _Tokenizer:
    # Imported here, not at the top: the package decodes its vocabularies on import, most of a
    # second and ~110 MiB that every worker would otherwise pay. The worker counts in a thread,
    # so the first count loads it off the event loop, and only once a stream is cut.
    with warnings.catch_warnings():
        # bpe-openai 0.1.4 reads them with ``importlib.resources.open_binary``, deprecated since
        # Python 3.11; harmless, but the test suite turns warnings into errors.
        warnings.simplefilter("ignore", DeprecationWarning)
        bindings = importlib.import_module("bpe_openai._bindings")
    tokenizer: _Tokenizer = bindings.tokenizer_for_encoding(ENCODING)
    return tokenizer


def count_text_tokens(text: str) -> int:
    """Tokens of ``text`` in ``ENCODING``. Special-token text (``<|endoftext|>``) counts as
    ordinary text, as a vendor sees it in a message."""
    if not text:
        return 0
    try:
        return _tokenizer().count(text)
    except UnicodeEncodeError:
        # A lone surrogate (JSON allows ``"\\ud800"``) is not UTF-8, and the tokenizer takes
        # UTF-8; count it as the replacement character a vendor would have seen.
        cleaned = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return _tokenizer().count(cleaned)


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
