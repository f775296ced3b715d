"""HTTP clients for vendor calls, sharded.

httpcore's connection pool scans every pooled connection on each request (to find an idle one
and to expire stale ones), so one client holding hundreds of connections spends more CPU on that
scan than on the call itself: profiled at a third of a worker's CPU with 200 calls in flight.
Several small pools, each request taking the next one in turn, keep every scan short.
"""

from __future__ import annotations

import itertools

import httpx

_CONNECTIONS_PER_SHARD = 32


class VendorClients:
    def __init__(self, max_connections: int) -> None:
        shards = max(1, -(-max_connections // _CONNECTIONS_PER_SHARD))
        per_shard = -(-max_connections // shards)
        self._clients = [
            httpx.AsyncClient(
                limits=httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard),
                # Retries are the worker's job alone (DESIGN.md); the transport adds none.
                transport=httpx.AsyncHTTPTransport(
                    retries=0,
                    limits=httpx.Limits(
                        max_connections=per_shard, max_keepalive_connections=per_shard
                    ),
                ),
                follow_redirects=False,
            )
            for _ in range(shards)
        ]
        self._next = itertools.cycle(self._clients)

    def pick(self) -> httpx.AsyncClient:
        return next(self._next)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
