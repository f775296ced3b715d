"""OpenAI Chat Completions as a client protocol: ``POST /v1/chat/completions`` <-> contract.

Pure translation, no I/O. ``parse_chat_request`` turns a decoded body into a
``ParsedChatRequest`` (or raises ``ProtocolError``); ``render_completion``, ``ChunkRenderer``,
``render_usage`` and ``render_error`` turn contract results into OpenAI's JSON shapes, which the
caller serialises (SSE framing and ``data: [DONE]`` belong to the route).
"""

from services.ingress.protocols.errors import ProtocolError
from services.ingress.protocols.openai_chat._request import ParsedChatRequest, parse_chat_request
from services.ingress.protocols.openai_chat._response import (
    SIMULATED_FINGERPRINT,
    render_completion,
    render_error,
    render_usage,
)
from services.ingress.protocols.openai_chat._stream import ChunkRenderer

__all__ = [
    "SIMULATED_FINGERPRINT",
    "ChunkRenderer",
    "ParsedChatRequest",
    "ProtocolError",
    "parse_chat_request",
    "render_completion",
    "render_error",
    "render_usage",
]
