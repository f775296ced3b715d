"""The provider adapter interface and the adapters' exception tree.

An adapter translates between the contract's chat schema and one vendor wire protocol, and
classifies the vendor's errors; it does no I/O. The worker owns the HTTP call, retries, metrics
and fallback, and talks to every vendor through the ``ProviderAdapter`` protocol defined here.

Exceptions an adapter raises, each carrying the ``ErrorInfo`` the worker reports::

    ProviderError
     ├── VendorProtocolError      the vendor answered something we cannot read
     ├── VendorStreamError        the vendor reported an error inside a 200 stream
     └── RequestTranslationError  the request cannot be expressed in this vendor's protocol
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from contracts.chat import ChatDelta, ChatRequest, ChatResponse
from contracts.errors import ErrorCode, ErrorInfo

# Vendor error messages are kept for the caller, but bounded: some vendors echo the whole
# offending request (prompt text included) back in their 400 bodies.
MAX_VENDOR_MESSAGE_CHARS = 500


@dataclass(frozen=True, kw_only=True)
class ProviderEndpoint:
    """Where and how to call one provider."""

    provider: str  # "openai", "deepseek", ...
    # OpenAI-style base URLs include the version prefix (``https://api.openai.com/v1``);
    # Anthropic's is the root (``https://api.anthropic.com``), as in each vendor's own SDK.
    base_url: str
    api_key: str | None
    # True when no key was configured and base_url points at Switchyard's vendor simulator.
    simulated: bool


@dataclass(frozen=True, kw_only=True)
class VendorRequest:
    """One HTTP call to make: always a POST with a JSON body."""

    url: str
    headers: dict[str, str]
    json: dict[str, Any]


class StreamDecoder(Protocol):
    """Turns a vendor's SSE events into contract deltas, one stream per decoder.

    The last delta a decoder emits carries ``finish_reason`` and ``usage`` together, once;
    ``usage`` is None only when the vendor never reported token counts.
    """

    def feed(self, event: str, data: str) -> list[ChatDelta]:
        """Decode one SSE event (``event`` may be "" or "message" for unnamed events)."""
        ...

    @property
    def finished(self) -> bool:
        """Whether the vendor's terminal event ([DONE], message_stop) has been seen."""
        ...


class ProviderAdapter(Protocol):
    def build_request(
        self, endpoint: ProviderEndpoint, model: str, chat: ChatRequest, *, stream: bool
    ) -> VendorRequest:
        """Translate a chat request; raises ``RequestTranslationError`` when impossible."""
        ...

    def parse_response(self, body: bytes) -> ChatResponse:
        """Read a successful (2xx) body; raises ``VendorProtocolError`` when malformed."""
        ...

    def stream_decoder(self) -> StreamDecoder:
        """A fresh decoder for one streamed response."""
        ...

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
        """Classify a non-2xx vendor answer."""
        ...


class ProviderError(Exception):
    """Root of the adapters' exceptions; ``info`` is what the worker reports."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


class VendorProtocolError(ProviderError):
    """The vendor's answer does not follow its own protocol (bad JSON, missing fields)."""

    def __init__(self, message: str) -> None:
        # Retryable: a garbled answer is usually a transient fault (truncated body, a proxy
        # error page), and the worker decides whether the stream can still be retried.
        super().__init__(
            ErrorInfo(
                code=ErrorCode.VENDOR_BAD_RESPONSE,
                message=excerpt(message),
                retryable=True,
            )
        )


class VendorStreamError(ProviderError):
    """The vendor reported an error inside an otherwise successful stream."""


class RequestTranslationError(ProviderError):
    """The request uses something this vendor's protocol cannot express (e.g. an image format
    the vendor does not accept). Not retryable on this target; another target may take it."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(
            ErrorInfo(code=ErrorCode.INVALID_REQUEST, message=message, retryable=False, param=param)
        )


def excerpt(message: str) -> str:
    """A vendor message bounded to ``MAX_VENDOR_MESSAGE_CHARS``."""
    message = message.strip()
    if len(message) <= MAX_VENDOR_MESSAGE_CHARS:
        return message
    return message[: MAX_VENDOR_MESSAGE_CHARS - 1] + "…"


def body_excerpt(body: bytes) -> str:
    """A raw error body as text, for vendors whose error shape we could not read; empty for an
    HTML page (a proxy's error page says nothing the status does not)."""
    text = body.decode("utf-8", errors="replace").strip()
    return "" if text.startswith("<") else excerpt(text)


def classify_transport_error(exc: Exception) -> ErrorInfo:
    """Classify an exception raised while calling a vendor (aiohttp's tree, or our own)."""
    if isinstance(exc, ProviderError):
        return exc.info
    detail = excerpt(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    # Timeouts first: aiohttp's ServerTimeoutError is a connection error *and* a timeout.
    # Connect timeouts count too: the vendor may never have seen the request, but from the
    # caller's side it is the vendor that did not answer in time.
    if isinstance(exc, TimeoutError):
        return ErrorInfo(code=ErrorCode.VENDOR_TIMEOUT, message=detail, retryable=True)
    # ClientConnectionError = refused, reset, DNS, and the vendor hanging up mid-answer;
    # ClientPayloadError = a body cut short. Anything else from aiohttp (say, an invalid URL)
    # is our bug and stays INTERNAL.
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return ErrorInfo(code=ErrorCode.VENDOR_UNREACHABLE, message=detail, retryable=True)
    return ErrorInfo(code=ErrorCode.INTERNAL, message=detail, retryable=False)
