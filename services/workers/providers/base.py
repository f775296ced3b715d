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

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from contracts.chat import ChatDelta, ChatRequest, ChatResponse
from contracts.errors import ErrorCode, ErrorInfo

# Vendor error messages are kept for the caller, but bounded: some vendors echo the whole
# offending request (prompt text included) back in their 400 bodies.
MAX_VENDOR_MESSAGE_CHARS = 500

log = logging.getLogger(__name__)


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

    def health_probe(self, endpoint: ProviderEndpoint) -> tuple[str, dict[str, str]]:
        """The URL and headers of a GET that costs nothing (listing the models), for active
        health checks."""
        ...


class ProviderError(Exception):
    """Root of the adapters' exceptions; ``info`` is what the worker reports."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


class VendorProtocolError(ProviderError):
    """The vendor's answer does not follow its own protocol (bad JSON, missing fields)."""

    def __init__(self, problem: str) -> None:
        """``problem`` is the adapter's own description of what is wrong ("chat completion has
        no choices"), never a library's exception text: it reaches the caller."""
        # Retryable: a garbled answer is usually a transient fault (truncated body, a proxy
        # error page), and the worker decides whether the stream can still be retried.
        super().__init__(
            ErrorInfo(
                code=ErrorCode.VENDOR_BAD_RESPONSE,
                message=excerpt(f"The vendor's answer could not be read: {problem}."),
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


def status_message(status: int, body: bytes) -> str:
    """What the caller is told when a vendor's error body holds no message we can read.

    The body itself (a proxy's HTML page, an Envoy "upstream connect error ...", an unknown
    shape) is logged, bounded, not passed on: it is infrastructure talking, not the vendor.
    """
    text = body.decode("utf-8", errors="replace").strip()
    if text and not text.startswith("<"):  # an HTML page says nothing the status does not
        log.warning("vendor answered HTTP %d with an unreadable error body: %.200s", status, text)
    return f"The vendor answered with HTTP status {status}."


# Each kind of transport failure, most specific first, with what the caller is told. The
# library's own text (aiohttp's class names, socket errors, addresses) goes to the log only.
# Order matters: aiohttp's timeouts are connection errors too, and its DNS and TLS failures are
# connector errors.
_TRANSPORT_FAILURES: tuple[tuple[type[BaseException], ErrorCode, str], ...] = (
    # Connect timeouts count as the vendor's: it may never have seen the request, but from
    # the caller's side it is the vendor that did not answer in time.
    (
        aiohttp.ConnectionTimeoutError,
        ErrorCode.VENDOR_TIMEOUT,
        "The vendor could not be reached in time.",
    ),
    (TimeoutError, ErrorCode.VENDOR_TIMEOUT, "The vendor did not answer in time."),
    (
        aiohttp.ClientConnectorDNSError,
        ErrorCode.VENDOR_UNREACHABLE,
        "The vendor's address could not be resolved.",
    ),
    (
        aiohttp.ClientSSLError,
        ErrorCode.VENDOR_UNREACHABLE,
        "A secure connection to the vendor could not be established.",
    ),
    (
        aiohttp.ClientConnectorError,
        ErrorCode.VENDOR_UNREACHABLE,
        "The vendor could not be reached.",
    ),
    (
        aiohttp.ClientPayloadError,
        ErrorCode.VENDOR_UNREACHABLE,
        "The connection to the vendor was lost mid-response.",
    ),
    (
        aiohttp.ServerDisconnectedError,
        ErrorCode.VENDOR_UNREACHABLE,
        "The vendor closed the connection before answering in full.",
    ),
    # Resets and any other socket failure once connected; a bare OSError can escape aiohttp's
    # transports too.
    (
        aiohttp.ClientConnectionError,
        ErrorCode.VENDOR_UNREACHABLE,
        "The connection to the vendor was lost.",
    ),
    (ConnectionError, ErrorCode.VENDOR_UNREACHABLE, "The connection to the vendor was lost."),
)
# Anything else (an invalid URL, a bug) is ours.
_INTERNAL_MESSAGE = "The call to the vendor failed inside Switchyard."


def classify_transport_error(
    exc: BaseException,
    *,
    provider: str | None = None,
    model: str | None = None,
    request_id: str | None = None,
) -> ErrorInfo:
    """Classify an exception raised while calling a vendor (aiohttp's tree, or our own).

    The caller is told what happened in Switchyard's words; the exception itself is logged
    here, with whatever of ``provider``, ``model`` and ``request_id`` the worker passes.
    """
    if isinstance(exc, ProviderError):
        return exc.info
    for kind, code, message in _TRANSPORT_FAILURES:
        if isinstance(exc, kind):
            log.warning(
                "vendor call failed (%s): %s",
                _context(provider=provider, model=model, request_id=request_id),
                _describe(exc),
            )
            return ErrorInfo(code=code, message=message, retryable=True)
    log.warning(
        "vendor call failed inside Switchyard (%s)",
        _context(provider=provider, model=model, request_id=request_id),
        exc_info=exc,
    )
    return ErrorInfo(code=ErrorCode.INTERNAL, message=_INTERNAL_MESSAGE, retryable=False)


def _context(**fields: str | None) -> str:
    return " ".join(f"{name}={value}" for name, value in fields.items() if value) or "no context"


def _describe(exc: BaseException) -> str:
    """The exception and its causes, for the log: ``ClientOSError: [Errno 104] reset``."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 4:
        text = str(seen)
        parts.append(f"{type(seen).__name__}: {text}" if text else type(seen).__name__)
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(parts)
