"""Lua scripts run atomically in Redis: how the shared counters (circuits, capacity) change state
in one step that no other replica can interleave with.

A script runs by its SHA1 (EVALSHA), so only the digest travels on every call. Redis forgets
its script cache when it restarts, and this project's Redis keeps nothing on disk; the first
call after a restart is answered NOSCRIPT and is sent again whole (EVAL, which also caches the
script), so no caller ever sees that.

The raw ``execute_command``, as on the other hot paths (``RequestStore.open``): redis-py's
helpers cost more CPU than the round trip they wrap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

ScriptArg = str | int | float | bytes

# Every script that needs the time reads the server's, not the caller's: replicas with skewed
# clocks then agree on windows, cooldowns and leases. Lua sees the time as (seconds, micros).
NOW_MS = (
    "local __t = redis.call('TIME')\n"
    "local now_ms = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)\n"
)


class RedisScript:
    """One Lua script; ``run`` it with any client (scripts hold no connection)."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def run(
        self, redis: aioredis.Redis, keys: Sequence[str], args: Sequence[ScriptArg]
    ) -> object:
        try:
            return await redis.execute_command(  # type: ignore[no-untyped-call]
                "EVALSHA", self.sha, len(keys), *keys, *args
            )
        except NoScriptError:
            return await redis.execute_command(  # type: ignore[no-untyped-call]
                "EVAL", self.source, len(keys), *keys, *args
            )
