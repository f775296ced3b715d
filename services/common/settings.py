"""Settings every service shares. Each service subclasses ``ServiceSettings`` with its own fields.

Settings are read once, in the service's factory, from ``SWITCHYARD_*`` environment variables, and
passed down explicitly; nothing reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_REDIS_PORT = 6380  # not 6379: a system redis may already sit there
DEFAULT_KAFKA_PORT = 9092


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_", extra="ignore", frozen=True)

    # Where local state lives: pid files, logs, Kafka and Redis data, the chDB directory.
    home: Path = Path(".local")
    kafka_bootstrap: str = f"127.0.0.1:{DEFAULT_KAFKA_PORT}"
    redis_url: str = f"redis://127.0.0.1:{DEFAULT_REDIS_PORT}/0"
    # ``chdb:///abs/path`` for the embedded engine, ``http(s)://user:pass@host:8123/db`` for
    # a server.
    clickhouse_dsn: str = ""
    log_level: str = "INFO"
    # Routes, fallbacks, circuit thresholds and provider limits (services.common.routing_config);
    # None: no routes, no limits, default thresholds.
    routing_config: Path | None = None

    @model_validator(mode="after")
    def _default_clickhouse(self) -> ServiceSettings:
        if not self.clickhouse_dsn:
            path = (self.home / "clickhouse").resolve()
            object.__setattr__(self, "clickhouse_dsn", f"chdb://{path}")
        return self


_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


def local_url(host: str, port: int) -> str:
    """Where a client on this machine reaches a service bound to ``host``: a wildcard bind is
    reached on loopback, an IPv6 literal in brackets."""
    host = "127.0.0.1" if host in _WILDCARD_HOSTS else host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
