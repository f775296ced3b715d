"""The OpenAI Chat Completions protocol, as spoken by OpenAI and the vendors that copy it.

Owns the translation of the contract's chat schema into ``POST {base_url}/chat/completions``,
the reading of its JSON and SSE answers, and the classification of its errors. One adapter
serves OpenAI, DeepSeek, Mistral, xAI, Moonshot, DashScope, Z.ai, MiniMax and Gemini's
OpenAI-compatible endpoint; where they differ on the request side, an ``OpenAIDialect`` says how.
The readers are deliberately lenient about the small ways the copies differ on the way back
(usage in odd places, content as a list, extra finish reasons).

``dialect`` holds the per-vendor request differences, ``request`` builds the body, ``response``
reads whole answers, ``stream`` decodes SSE chunks, ``errors`` classifies failures; this module
assembles them into the adapter.
"""

from __future__ import annotations

from collections.abc import Mapping

from contracts.chat import ChatRequest, ChatResponse
from contracts.errors import ErrorInfo
from services.workers.providers.base import ProviderEndpoint, VendorRequest
from services.workers.providers.openai_compat.dialect import (
    GENERIC_DIALECT,
    MISTRAL_DIALECT,
    OPENAI_DIALECT,
    OpenAIDialect,
)
from services.workers.providers.openai_compat.errors import classify_openai_error
from services.workers.providers.openai_compat.request import request_body
from services.workers.providers.openai_compat.response import read_completion
from services.workers.providers.openai_compat.stream import OpenAIStreamDecoder

__all__ = [
    "GENERIC_DIALECT",
    "MISTRAL_DIALECT",
    "OPENAI_DIALECT",
    "OpenAICompatAdapter",
    "OpenAIDialect",
    "OpenAIStreamDecoder",
    "classify_openai_error",
]


class OpenAICompatAdapter:
    """The ``ProviderAdapter`` for the Chat Completions protocol."""

    def __init__(self, dialect: OpenAIDialect = GENERIC_DIALECT) -> None:
        self.dialect = dialect

    def build_request(
        self, endpoint: ProviderEndpoint, model: str, chat: ChatRequest, *, stream: bool
    ) -> VendorRequest:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if stream:
            headers["accept"] = "text/event-stream"
        if endpoint.api_key:
            headers["authorization"] = f"Bearer {endpoint.api_key}"
        return VendorRequest(
            url=f"{endpoint.base_url.rstrip('/')}/chat/completions",
            headers=headers,
            json=request_body(self.dialect, model, chat, stream=stream),
        )

    def parse_response(self, body: bytes) -> ChatResponse:
        return read_completion(body)

    def stream_decoder(self) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder()

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
        return classify_openai_error(status, headers, body)

    def health_probe(self, endpoint: ProviderEndpoint) -> tuple[str, dict[str, str]]:
        headers = {"accept": "application/json"}
        if endpoint.api_key:
            headers["authorization"] = f"Bearer {endpoint.api_key}"
        return f"{endpoint.base_url.rstrip('/')}/models", headers
