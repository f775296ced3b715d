"""One call to a vendor, non-streaming or streaming, through a provider adapter.

The adapter translates and classifies; this module does the I/O and turns every way a call can
fail into ``CallFailed`` carrying the classified ``ErrorInfo``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import orjson
from httpx_sse import EventSource, SSEError

from contracts.chat import ChatDelta, ChatRequest, ChatResponse, Usage
from contracts.errors import ErrorCode, ErrorInfo
from services.workers.providers.base import (
    ProviderAdapter,
    ProviderEndpoint,
    ProviderError,
    VendorProtocolError,
    VendorRequest,
    VendorStreamError,
    classify_transport_error,
)

DeltaSink = Callable[[ChatDelta], Awaitable[None]]


class CallFailed(Exception):
    def __init__(self, info: ErrorInfo, *, usage: Usage | None = None) -> None:
        super().__init__(info.message)
        self.info = info
        self.usage = usage or Usage()


@dataclass(frozen=True)
class CallResult:
    response: ChatResponse | None  # None for streams: the deltas were the answer
    usage: Usage
    vendor_ms: int
    ttft_ms: int | None


@dataclass(frozen=True)
class VendorCall:
    client: httpx.AsyncClient
    adapter: ProviderAdapter
    endpoint: ProviderEndpoint
    model: str
    chat: ChatRequest
    timeout: httpx.Timeout

    def _build(self, *, stream: bool) -> VendorRequest:
        try:
            return self.adapter.build_request(self.endpoint, self.model, self.chat, stream=stream)
        except ProviderError as exc:  # e.g. an image format this vendor cannot take
            raise CallFailed(exc.info) from exc

    async def complete(self) -> CallResult:
        request = self._build(stream=False)
        started = time.monotonic()
        try:
            response = await self.client.post(
                request.url,
                headers=request.headers,
                content=orjson.dumps(request.json),
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise CallFailed(classify_transport_error(exc)) from exc
        vendor_ms = _ms_since(started)
        if response.status_code >= 400:
            raise CallFailed(
                self.adapter.classify_error(
                    response.status_code, response.headers, response.content
                )
            )
        try:
            parsed = self.adapter.parse_response(response.content)
        except VendorProtocolError as exc:
            raise CallFailed(exc.info) from exc
        return CallResult(response=parsed, usage=parsed.usage, vendor_ms=vendor_ms, ttft_ms=None)

    async def stream(self, sink: DeltaSink) -> CallResult:
        request = self._build(stream=True)
        decoder = self.adapter.stream_decoder()
        started = time.monotonic()
        ttft_ms: int | None = None
        usage: Usage | None = None
        try:
            async with self.client.stream(
                "POST",
                request.url,
                headers=request.headers,
                content=orjson.dumps(request.json),
                timeout=self.timeout,
            ) as response:
                if response.status_code >= 400:
                    body = await response.aread()
                    raise CallFailed(
                        self.adapter.classify_error(response.status_code, response.headers, body)
                    )
                async for event in EventSource(response).aiter_sse():
                    for delta in decoder.feed(event.event, event.data):
                        if ttft_ms is None and (delta.text or delta.tool_call is not None):
                            ttft_ms = _ms_since(started)
                        if delta.usage is not None:
                            usage = delta.usage
                        await sink(delta)
                    if decoder.finished:
                        break
        except (VendorProtocolError, VendorStreamError) as exc:
            raise CallFailed(exc.info, usage=usage) from exc
        except SSEError as exc:
            raise CallFailed(
                ErrorInfo(code=ErrorCode.VENDOR_BAD_RESPONSE, message=f"bad event stream: {exc}"),
                usage=usage,
            ) from exc
        except httpx.HTTPError as exc:
            raise CallFailed(classify_transport_error(exc), usage=usage) from exc
        if not decoder.finished:
            raise CallFailed(
                ErrorInfo(
                    code=ErrorCode.VENDOR_BAD_RESPONSE,
                    message="the vendor's stream ended before its final event",
                    retryable=True,
                ),
                usage=usage,
            )
        return CallResult(
            response=None, usage=usage or Usage(), vendor_ms=_ms_since(started), ttft_ms=ttft_ms
        )


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
