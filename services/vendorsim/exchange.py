"""The ASGI plumbing: one HTTP exchange, read and answered with as little work as possible.

The simulator speaks raw ASGI rather than through a framework: it must never be the bottleneck of
a benchmark, and it needs a way to break a response on purpose (``abandon``), which frameworks
rightly make hard.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

SIMULATED = (b"x-switchyard-simulated", b"true")
JSON_HEADERS: Headers = [(b"content-type", b"application/json"), SIMULATED]
SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    SIMULATED,
]


class ClientGone(Exception):
    """The client hung up before its request body arrived."""


class Exchange:
    __slots__ = ("_receive", "_send", "scope", "status")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.status = 0  # the status sent, once the response has started

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    def query(self, name: str) -> str | None:
        """A query string parameter, percent-decoded; the first if it repeats, ``None`` if absent
        or empty."""
        # Only the control endpoints ask, so parsing on demand costs the vendor routes nothing.
        raw = bytes(self.scope.get("query_string", b"")).decode("latin-1")
        values = parse_qs(raw).get(name)
        return values[0] if values else None

    def header(self, name: bytes) -> bytes | None:
        """A request header by its lower-case name."""
        for key, value in self.scope["headers"]:
            if key == name:
                return bytes(value)
        return None

    async def body(self) -> bytes:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            return body
        parts = [body]
        while message.get("more_body", False):
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            parts.append(message.get("body", b""))
        return b"".join(parts)

    async def respond(self, status: int, body: bytes, headers: Headers = JSON_HEADERS) -> None:
        await self.begin(status, [*headers, (b"content-length", b"%d" % len(body))])
        await self._send({"type": "http.response.body", "body": body})

    async def begin(self, status: int, headers: Headers) -> None:
        """Start a response whose body follows in ``write`` calls (chunked, unless ``headers``
        give a content-length)."""
        self.status = status
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def write(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self, data: bytes = b"") -> None:
        await self._send({"type": "http.response.body", "body": data})

    async def disconnected(self) -> None:
        """Return when the client hangs up. Only once the body has been read: the next
        ``receive`` then returns nothing but a disconnect."""
        while (await self._receive())["type"] != "http.disconnect":
            pass
