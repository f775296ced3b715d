"""Server-sent events, decoded from the bytes of a vendor's streaming response.

Why not a library: the Python SSE parsers are each bound to one HTTP client (httpx-sse to
httpx, aiohttp-sse-client to its own session type) and the workers call vendors with aiohttp's
bare response stream (see ``calls``). The format is small and fully specified (WHATWG HTML,
"Parsing an event stream"); this follows it, with one leniency noted below.
"""

from __future__ import annotations

from dataclasses import dataclass

_DEFAULT_EVENT = "message"


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    data: str


class SSEDecoder:
    """Feed raw bytes as they arrive; get whole events back."""

    def __init__(self) -> None:
        self._pending = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        buffer = self._pending + chunk
        # A trailing CR may be the first half of CRLF: keep it until the next chunk.
        cut = len(buffer) - 1 if buffer.endswith(b"\r") else len(buffer)
        complete, self._pending = buffer[:cut], buffer[cut:]
        lines = complete.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._pending = lines.pop() + self._pending  # the unterminated tail
        events: list[ServerSentEvent] = []
        for line in lines:
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[ServerSentEvent]:
        """The stream ended. The spec drops an event not closed by a blank line; vendors
        sometimes end their final event without one, so it is kept."""
        events = self.feed(b"\n") if self._pending else []
        event = self._line("")
        return [*events, *([event] if event is not None else [])]

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment (keep-alive pings)
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        # "id" and "retry" matter to browsers reconnecting, not to a one-shot vendor call.
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(event=self._event or _DEFAULT_EVENT, data="\n".join(self._data))
        self._event, self._data = "", []
        return event
