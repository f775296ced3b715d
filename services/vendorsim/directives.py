"""Per-request directives: ``[sim:...]`` markers in the final user message.

They let an end-to-end test steer one call through the whole gateway without touching the
simulator's global knobs:

==========================  ===============================================================
``[sim:fail=429]``          answer with that status (any 4xx/5xx; 529 is Anthropic overload)
``[sim:fail=timeout]``      hang for ``timeout_hang_s``
``[sim:fail=429x2]``        fail the first 2 times this exact conversation is seen, then answer
``[sim:fail=503@gpt-4o]``   fail only when the request's ``model`` is exactly ``gpt-4o``; other
                            models answer. Combines with the above: ``[sim:fail=429x2@m]``,
                            ``[sim:fail=timeout@m]``
``[sim:ttft=200]``          200 ms before the first byte
``[sim:itl=20]``            20 ms between streamed tokens
``[sim:tokens=50]``         a 50-word reply
``[sim:tool]``              call a tool (``[sim:tool=name]`` picks which) if the request has tools
``[sim:cache=100]``         report 100 of the prompt tokens as read from the cache
``[sim:reasoning=30]``      report 30 reasoning tokens (counted in the completion tokens)
``[sim:disconnect]``        drop the connection halfway through the reply
``[sim:malformed]``         send a line that is not JSON halfway through the reply
==========================  ===============================================================

Several ``fail`` directives may name different models, so one prompt can fail model A with a
503 and model B with a 500 while model C answers: that is how a test drives a gateway's fallback.
For a given model, a directive naming it beats one naming no model; between two that match
equally, the later in the message wins. A counted failure (``xN``) naming a model is counted per
(conversation, model); one naming no model is counted per conversation, whichever models it hits.

Unknown or malformed directives are ignored, as a real model would ignore them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_DIRECTIVE = re.compile(r"\[sim:([a-z_]+)(?:=([^\]\s]*))?\]")
# The model name is whatever follows the first ``@``: vendor ids hold ``-``, ``.``, ``/`` and
# ``:``, and ``_DIRECTIVE`` already stops a value at whitespace or ``]``.
_FAILURE = re.compile(r"(timeout|[45]\d\d)(?:x(\d+))?(?:@(.+))?")

TIMEOUT = "timeout"
MAX_TOKENS = 100_000
MAX_DELAY_MS = 600_000.0


@dataclass(frozen=True, slots=True)
class Failure:
    """A failure asked for by a directive: a status code or ``TIMEOUT``, for how many times
    (``None``: every time), and for which model (``None``: every model)."""

    kind: int | str
    times: int | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Directives:
    # At most one per model (``None`` included), in the order they were written.
    failures: tuple[Failure, ...] = ()
    ttft_ms: float | None = None
    itl_ms: float | None = None
    tokens: int | None = None
    tool: bool = False
    tool_name: str | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    disconnect: bool = False
    malformed: bool = False

    def failure_for(self, model: str) -> Failure | None:
        """The failure that applies to a call to ``model``, if any."""
        fallback = None
        for failure in self.failures:
            if failure.model == model:
                return failure
            if failure.model is None:
                fallback = failure
        return fallback


NO_DIRECTIVES = Directives()


def parse_directives(text: str) -> Directives:
    # The common case is a prompt without any: skip the regex machinery entirely.
    if "[sim:" not in text:
        return NO_DIRECTIVES
    found = NO_DIRECTIVES
    for name, value in _DIRECTIVE.findall(text):
        match name:
            case "fail":
                failure = _failure(value)
                if failure is not None:
                    # A later directive for the same model replaces the earlier one.
                    others = tuple(f for f in found.failures if f.model != failure.model)
                    found = replace(found, failures=(*others, failure))
            case "ttft" if (ms := _milliseconds(value)) is not None:
                found = replace(found, ttft_ms=ms)
            case "itl" if (ms := _milliseconds(value)) is not None:
                found = replace(found, itl_ms=ms)
            case "tokens" if value.isdigit():
                found = replace(found, tokens=min(int(value), MAX_TOKENS))
            case "cache" if value.isdigit():
                found = replace(found, cached_tokens=int(value))
            case "reasoning" if value.isdigit():
                found = replace(found, reasoning_tokens=min(int(value), MAX_TOKENS))
            case "tool":
                found = replace(found, tool=True, tool_name=value or None)
            case "disconnect":
                found = replace(found, disconnect=True)
            case "malformed":
                found = replace(found, malformed=True)
    return found


def _failure(value: str) -> Failure | None:
    match = _FAILURE.fullmatch(value)
    if match is None:
        return None
    kind, times, model = match.groups()
    return Failure(
        kind=TIMEOUT if kind == TIMEOUT else int(kind),
        times=int(times) if times else None,
        model=model,
    )


def _milliseconds(value: str) -> float | None:
    try:
        ms = float(value)
    except ValueError:
        return None
    return ms if 0 <= ms <= MAX_DELAY_MS else None
