"""How each vendor's copy of the Chat Completions request differs from OpenAI's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, kw_only=True)
class OpenAIDialect:
    """How one vendor's copy of the request side differs from OpenAI's."""

    # OpenAI deprecated ``max_tokens`` for ``max_completion_tokens`` and its reasoning models
    # reject the old name; the other vendors document only ``max_tokens`` (some reject the new
    # one as an unknown field), so the name is per vendor.
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    seed_param: str = "seed"
    # ``stream_options.include_usage`` is how OpenAI-style streams are asked for usage.
    stream_usage_option: bool = True
    # Whether ``user`` and per-message ``name`` are accepted.
    accepts_user: bool = True
    # Mistral rejects tool call ids that are not exactly nine alphanumerics; ids minted by
    # other vendors (``call_…``, ``toolu_…``) must be mapped when a conversation moves there.
    nine_char_tool_call_ids: bool = False


OPENAI_DIALECT = OpenAIDialect(max_tokens_param="max_completion_tokens")
GENERIC_DIALECT = OpenAIDialect()
# Mistral validates strictly (422 on unknown fields): no ``user``/``name``, no
# ``stream_options`` (it reports usage in the last chunk unasked), and ``random_seed``.
MISTRAL_DIALECT = OpenAIDialect(
    seed_param="random_seed",
    stream_usage_option=False,
    accepts_user=False,
    nine_char_tool_call_ids=True,
)
