"""The one way services connect to Redis, so that all of them survive a Redis restart alike.

redis-py's defaults suit a cache that may hang a caller for a while: ten retries with a backoff
of up to ten seconds each, so one command can take a minute to fail while Redis is down, and
pooled connections that died with the old server are found out one failed command at a time.
Switchyard's requests have deadlines of seconds, so:

- a command is retried twice, quickly, after reconnecting (a connection that died with a
  restarted server is replaced on its first use, and the command goes through);
- a connection idle for a few seconds is checked with a PING before it is used again;
- connecting gives up after a second, so a dead Redis is reported at once and the caller's own
  loop (with its own deadline) decides whether to wait for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.deadlines import retry_until

T = TypeVar("T")

# What "Redis is down or restarting" looks like to a caller: catch these, never a bare Exception.
REDIS_DOWN = (RedisError, OSError)

_CONNECT_TIMEOUT_S = 1.0
# Longer than the reply inbox's blocking read (1 s), which holds its connection that long.
_SOCKET_TIMEOUT_S = 5.0
_HEALTH_CHECK_INTERVAL_S = 5


def connect_redis(url: str, *, max_connections: int = 256) -> aioredis.Redis:
    """A client (nothing connects until the first command)."""
    return aioredis.Redis.from_url(
        url,
        max_connections=max_connections,
        socket_connect_timeout=_CONNECT_TIMEOUT_S,
        socket_timeout=_SOCKET_TIMEOUT_S,
        socket_keepalive=True,
        health_check_interval=_HEALTH_CHECK_INTERVAL_S,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, OSError],
    )


# Between tries while Redis is down: a restarted Redis is used within this long of coming back.
_RETRY_EVERY_S = 0.25


async def until_redis_answers(op: Callable[[], Awaitable[T]], *, deadline_ms: int) -> T:
    """``op()``, tried again while Redis is down or restarting, until ``deadline_ms`` (epoch ms);
    then ``DeadlinePassed``. The client's own quick retries cover a connection that died with a
    restarted server; this covers the seconds a restart takes."""
    return await retry_until(
        op, deadline_ms=deadline_ms, retry_on=REDIS_DOWN, every_s=_RETRY_EVERY_S
    )
