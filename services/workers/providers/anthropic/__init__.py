"""The Anthropic Messages protocol.

Owns the translation of the contract's chat schema into ``POST {base_url}/v1/messages``, the
reading of its JSON and SSE answers, and the classification of its errors. Where the contract
asks for something Messages cannot say, the choice made is written next to the code:
``max_tokens`` defaults, temperature range, JSON output, unparseable tool arguments, and the
sampling knobs Anthropic does not have (seed, penalties, reasoning effort: dropped).

``request`` builds the body, ``response`` reads whole answers, ``stream`` decodes SSE events,
``errors`` classifies failures; this module assembles them into the adapter.
"""

from __future__ import annotations

from collections.abc import Mapping

from contracts.chat import ChatRequest, ChatResponse
from contracts.errors import ErrorInfo
from services.workers.providers.anthropic.errors import classify_anthropic_error
from services.workers.providers.anthropic.request import (
    ANTHROPIC_VERSION,
    DEFAULT_MAX_TOKENS,
    request_body,
)
from services.workers.providers.anthropic.response import read_message
from services.workers.providers.anthropic.stream import AnthropicStreamDecoder
from services.workers.providers.base import ProviderEndpoint, VendorRequest

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "AnthropicAdapter",
    "AnthropicStreamDecoder",
    "classify_anthropic_error",
]


class AnthropicAdapter:
    """The ``ProviderAdapter`` for the Messages protocol."""

    def build_request(
        self, endpoint: ProviderEndpoint, model: str, chat: ChatRequest, *, stream: bool
    ) -> VendorRequest:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "anthropic-version": ANTHROPIC_VERSION,
        }
        if endpoint.api_key:
            headers["x-api-key"] = endpoint.api_key
        return VendorRequest(
            url=f"{endpoint.base_url.rstrip('/')}/v1/messages",
            headers=headers,
            json=request_body(model, chat, stream=stream),
        )

    def parse_response(self, body: bytes) -> ChatResponse:
        return read_message(body)

    def stream_decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
        return classify_anthropic_error(status, headers, body)

    def health_probe(self, endpoint: ProviderEndpoint) -> tuple[str, dict[str, str]]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if endpoint.api_key:
            headers["x-api-key"] = endpoint.api_key
        return f"{endpoint.base_url.rstrip('/')}/v1/models", headers
