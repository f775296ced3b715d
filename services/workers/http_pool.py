"""The HTTP session the worker calls vendors with (see ``calls`` for why aiohttp)."""

from __future__ import annotations

import aiohttp


def vendor_session(max_connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=max_connections,
            # Vendors sit behind load balancers whose addresses change; re-resolve now and then.
            ttl_dns_cache=300,
            keepalive_timeout=30,
        ),
        # aiohttp never retries on its own; retries are the worker's job alone (DESIGN.md).
        auto_decompress=True,
        raise_for_status=False,
        # Vendor responses are JSON we parse ourselves; no cookie jar is wanted between calls.
        cookie_jar=aiohttp.DummyCookieJar(),
    )
