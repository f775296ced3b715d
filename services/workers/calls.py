"""One call to a vendor, non-streaming or streaming, through a provider adapter.

The adapter translates and classifies; this module does the I/O and turns every way a call can
fail into ``CallFailed`` carrying the classified ``ErrorInfo``.

Why aiohttp and not httpx (the stack's default HTTP client): a vendor call is the worker's hot
path, and httpx spent 0.9-2.0 ms of CPU per call against aiohttp's 0.1-0.17 ms on this kind of
machine (same requests to the vendor simulator, 1 to 100 in flight). At the gateway's target
rates that difference was most of a CPU core.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import orjson

from contracts.chat import ChatDelta, ChatRequest, ChatResponse, ToolCallDelta, Usage
from contracts.errors import ErrorCode, ErrorInfo
from services.workers.providers.base import (
    ProviderAdapter,
    ProviderEndpoint,
    ProviderError,
    StreamDecoder,
    VendorProtocolError,
    VendorRequest,
    VendorStreamError,
    classify_transport_error,
)
from services.workers.sse import ServerSentEvent, SSEDecoder

# Receives the deltas of one network read together, so they can travel on in one round trip.
DeltaSink = Callable[[list[ChatDelta]], Awaitable[None]]


@dataclass
class StreamTally:
    """What a stream has produced so far, kept by the caller of ``VendorCall.stream`` so that it
    survives however the stream ends (a vendor fault, the caller going away): what the vendor
    produced is what it charges for."""

    produced: list[str] = field(default_factory=list)  # text and tool-call arguments
    usage: Usage | None = None  # the vendor's own count, when it sent one

    @property
    def text(self) -> str:
        return "".join(self.produced)


class CallFailed(Exception):
    """A classified failure. What a failed stream had produced is in its ``StreamTally``."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


@dataclass(frozen=True)
class CallResult:
    response: ChatResponse | None  # None for streams: the deltas were the answer
    usage: Usage
    vendor_ms: int
    ttft_ms: int | None


@dataclass(frozen=True)
class VendorCall:
    session: aiohttp.ClientSession
    adapter: ProviderAdapter
    endpoint: ProviderEndpoint
    model: str
    chat: ChatRequest
    timeout: aiohttp.ClientTimeout

    def _build(self, *, stream: bool) -> VendorRequest:
        try:
            return self.adapter.build_request(self.endpoint, self.model, self.chat, stream=stream)
        except ProviderError as exc:  # e.g. an image format this vendor cannot take
            raise CallFailed(exc.info) from exc

    def _transport_error(self, exc: BaseException) -> ErrorInfo:
        return classify_transport_error(exc, provider=self.endpoint.provider, model=self.model)

    async def complete(self) -> CallResult:
        request = self._build(stream=False)
        started = time.monotonic()
        try:
            async with self.session.post(
                request.url,
                data=orjson.dumps(request.json),
                headers=request.headers,  # the adapter sets content-type and auth
                timeout=self.timeout,
            ) as response:
                body = await response.read()
                status, headers = response.status, response.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise CallFailed(self._transport_error(exc)) from exc
        vendor_ms = _ms_since(started)
        if status >= 400:
            raise CallFailed(self.adapter.classify_error(status, headers, body))
        try:
            parsed = self.adapter.parse_response(body)
        except VendorProtocolError as exc:
            raise CallFailed(exc.info) from exc
        return CallResult(response=parsed, usage=parsed.usage, vendor_ms=vendor_ms, ttft_ms=None)

    async def stream(self, sink: DeltaSink, tally: StreamTally) -> CallResult:
        request = self._build(stream=True)
        decoder = self.adapter.stream_decoder()
        events = SSEDecoder()
        started = time.monotonic()
        ttft_ms: int | None = None

        async def relay(deltas: list[ChatDelta]) -> None:
            nonlocal ttft_ms
            for delta in deltas:
                if ttft_ms is None and (delta.text or delta.tool_call is not None):
                    ttft_ms = _ms_since(started)
                if delta.text:
                    tally.produced.append(delta.text)
                if delta.tool_call is not None:
                    tally.produced.append(_tool_call_text(delta.tool_call))
                if delta.usage is not None:
                    tally.usage = delta.usage
            if deltas:
                await sink(deltas)

        try:
            async with self.session.post(
                request.url,
                data=orjson.dumps(request.json),
                headers=request.headers,  # the adapter sets content-type and auth
                timeout=self.timeout,
            ) as response:
                if response.status >= 400:
                    body = await response.read()
                    raise CallFailed(
                        self.adapter.classify_error(response.status, response.headers, body)
                    )
                async for chunk in response.content.iter_any():
                    await _relay_decoded(relay, decoder, events.feed(chunk))
                    if decoder.finished:
                        break
                else:
                    await _relay_decoded(relay, decoder, events.close())
        except (VendorProtocolError, VendorStreamError) as exc:
            raise CallFailed(exc.info) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise CallFailed(self._transport_error(exc)) from exc
        if not decoder.finished:
            raise CallFailed(
                ErrorInfo(
                    code=ErrorCode.VENDOR_BAD_RESPONSE,
                    message="the vendor's stream ended before its final event",
                    retryable=True,
                )
            )
        return CallResult(
            response=None,
            usage=tally.usage or Usage(),
            vendor_ms=_ms_since(started),
            ttft_ms=ttft_ms,
        )


async def _relay_decoded(
    relay: DeltaSink, decoder: StreamDecoder, events: list[ServerSentEvent]
) -> None:
    """Decode one network read's events and relay their deltas together. A bad event still lets
    the deltas before it through: the vendor produced them (and charges for them), and the
    caller may be reading the stream already."""
    deltas: list[ChatDelta] = []
    try:
        for event in events:
            deltas.extend(decoder.feed(event.event, event.data))
    except (VendorProtocolError, VendorStreamError):
        await relay(deltas)
        raise
    await relay(deltas)


def _tool_call_text(delta: ToolCallDelta) -> str:
    return (delta.name or "") + delta.arguments


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
