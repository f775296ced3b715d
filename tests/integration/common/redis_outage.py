"""Redis going away and coming back, as its clients see it, without touching the Redis other
tests use: a TCP proxy in front of the test Redis that a test cuts and restores."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


class RedisOutage:
    """A TCP proxy in front of the test Redis that a test can cut and restore: Redis going away
    and coming back, as its clients see it, without touching the Redis other tests use."""

    def __init__(self, redis_url: str) -> None:
        target = urlsplit(redis_url)
        self._target = (target.hostname or "127.0.0.1", target.port or 6379)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._port}/0"

    async def restore(self) -> None:
        self._server = await asyncio.start_server(
            self._relay, "127.0.0.1", self._port, reuse_address=True
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.transport.abort()
            return
        self._writers |= {client_w, upstream_w}
        try:
            await asyncio.gather(_pump(client_r, upstream_w), _pump(upstream_r, client_w))
        finally:
            self._writers -= {client_w, upstream_w}
            for writer in (client_w, upstream_w):
                writer.transport.abort()


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.transport.abort()
