"""Counting tokens with a real tokenizer, offline: ``o200k_base``, OpenAI's current encoding.

Used where a count must be close without a vendor call: the workers' usage estimate for a stream
the vendor cut (``services.workers.estimate``) and ingress' prompt size for automatic model
choice (``services.common.prompt_features``).

Tokenizer: ``bpe-openai`` (GitHub's ``bpe-openai`` Rust crate behind Python bindings). Its wheels
carry the ``o200k_base`` and ``cl100k_base`` vocabularies compiled in, so it counts with no
network at all; ``tiktoken`` downloads its BPE files on first use, which a machine that reaches
only package registries cannot do. Its counts match tiktoken's (``"hello world"`` is
``[24912, 2375]`` in o200k_base, as in tiktoken). Wheels are abi3 for CPython >= 3.9 on manylinux
x86_64/aarch64, macOS arm64 and Windows. We call its native tokenizer
(``bpe_openai._bindings``, typed by the package's own ``.pyi``), not the tiktoken-style
``Encoding`` wrapper: the native one counts without building the token list, and the wrapper
refuses texts of 1,000,000 characters or 200,000 tokens, which a long-context prompt can exceed.

Loading costs most of a second and ~110 MiB: a process that counts loads it once, off its event
loop (``warm``), and a process that never counts never pays.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from typing import Protocol

__all__ = ["ENCODING", "count_text_tokens", "utf8_safe", "warm"]

ENCODING = "o200k_base"


class _Tokenizer(Protocol):
    def count(self, text: str) -> int: ...


@functools.cache
def _tokenizer() -> _Tokenizer:
    with warnings.catch_warnings():
        # bpe-openai 0.1.4 reads them with ``importlib.resources.open_binary``, deprecated since
        # Python 3.11; harmless, but the test suite turns warnings into errors.
        warnings.simplefilter("ignore", DeprecationWarning)
        bindings = importlib.import_module("bpe_openai._bindings")
    tokenizer: _Tokenizer = bindings.tokenizer_for_encoding(ENCODING)
    return tokenizer


def warm() -> None:
    """Load the vocabulary now (call it in a thread), so the first count does not wait for it."""
    _tokenizer()


def utf8_safe(text: str) -> str:
    """``text``, with any lone surrogate (JSON allows ``"\\ud800"``; UTF-8 does not) replaced by
    the replacement character a vendor would have seen. Native readers take UTF-8 only."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def count_text_tokens(text: str) -> int:
    """Tokens of ``text`` in ``ENCODING``. Special-token text (``<|endoftext|>``) counts as
    ordinary text, as a vendor sees it in a message."""
    if not text:
        return 0
    try:
        return _tokenizer().count(text)
    except UnicodeEncodeError:
        return _tokenizer().count(utf8_safe(text))
