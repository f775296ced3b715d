"""The one exception a client protocol raises: the caller sent something we refuse.

It always means HTTP 400 (``ErrorCode.INVALID_REQUEST``); the route renders ``.info`` in the
caller's protocol, so the message and the ``param`` path are written for the caller to read.
"""

from __future__ import annotations

from contracts.errors import ErrorCode, ErrorInfo


class ProtocolError(Exception):
    """A request body that is malformed, or asks for something this router does not support."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.info = ErrorInfo(code=ErrorCode.INVALID_REQUEST, message=message, param=param)

    @property
    def param(self) -> str | None:
        return self.info.param
