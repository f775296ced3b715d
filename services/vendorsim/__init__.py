"""The vendor simulator: a fast, deterministic fake of the OpenAI and Anthropic APIs.

It is the upstream for tests, benchmarks and the offline demo, and says so on every response
(``x-switchyard-simulated: true``). Replies and token counts depend only on the request
(see ``tokens`` for the counting rule); latency, errors and faults follow the knobs
(``SimKnobs``, ``SWITCHYARD_VENDORSIM_*``, ``/_sim/config``), per-request ``[sim:...]``
directives (see ``directives``) and timed outages of a model (``/_sim/outage``, see ``outages``).

HTTP surface (any API key, any ``anthropic-version``, any model name, echoed back):

- ``POST /v1/chat/completions``: OpenAI Chat Completions, plain and SSE (``protocols.openai``).
- ``POST /v1/messages``, ``POST /v1/messages/count_tokens``: Anthropic Messages
  (``protocols.anthropic``).
- ``GET /v1/models``: Anthropic's list shape when ``anthropic-version`` is sent, else OpenAI's.
- ``GET /healthz``; ``/_sim/config``, ``/_sim/outage``, ``/_sim/reset``, ``/_sim/stats``,
  ``/_sim/calls`` (``control``).

Not simulated: ``n`` > 1 (one choice only), ``stop`` sequences, logprobs, audio.
"""

from services.vendorsim.app import VendorSim, create_app
from services.vendorsim.knobs import SimKnobs
from services.vendorsim.tokens import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    PROMPT_OVERHEAD,
    TOOL_OVERHEAD,
    count_prompt_tokens,
    count_text_tokens,
)

__all__ = [
    "IMAGE_TOKENS",
    "MESSAGE_OVERHEAD",
    "PROMPT_OVERHEAD",
    "TOOL_OVERHEAD",
    "SimKnobs",
    "VendorSim",
    "count_prompt_tokens",
    "count_text_tokens",
    "create_app",
]
