"""What every wire protocol provides to the app: the ``ChatWire`` interface and its values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.vendorsim.conversation import Conversation
from services.vendorsim.reply import Reply


class BadRequest(Exception):
    """The request body cannot be understood; answered with a 400 in the protocol's shape."""


@dataclass(frozen=True, slots=True)
class StreamFrames:
    """A streamed reply as SSE bytes. ``head`` goes out with the first token; ``tokens`` hold
    one frame per fragment of the reply; ``tail`` closes the stream."""

    head: bytes
    tokens: tuple[bytes, ...]
    tail: bytes


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    status: int
    body: bytes


class ChatWire(Protocol):
    # A line that is valid SSE but whose data is not JSON, for the ``malformed`` fault.
    malformed_frame: bytes
    # Name of the header carrying the request id, as the vendor spells it.
    request_id_header: bytes

    def parse(self, body: bytes) -> Conversation: ...

    def render(self, conversation: Conversation, reply: Reply, serial: str) -> bytes: ...

    def stream(self, conversation: Conversation, reply: Reply, serial: str) -> StreamFrames: ...

    def error(self, status: int, message: str) -> ErrorAnswer: ...
