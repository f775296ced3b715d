"""Where the local stack lives: its directories, its ports and the environment its services get.

Everything is derived from two inputs, ``SWITCHYARD_HOME`` and ``SWITCHYARD_PORT_OFFSET``, so a
second stack (the test suite's, say) is one offset and one directory away from a developer's
running one and never touches it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# The repository this package runs from: templates under deploy/ and the Kafka jars that
# scripts/bootstrap.sh fetched live here, not under SWITCHYARD_HOME, so a throwaway home (the
# tests') does not download Kafka again.
REPO_ROOT = Path(__file__).resolve().parents[2]

KAFKA_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
REDIS_PORT = 6380
INGRESS_PORT = 8080
VENDORSIM_PORT = 8090
METERING_PORT = 8091
ROUTER_PORT = 8092
# Workers take consecutive ports from here, one per worker process, for /healthz and metrics.
FIRST_WORKER_PORT = 8093


@dataclass(frozen=True, kw_only=True)
class StackLayout:
    home: Path
    port_offset: int = 0
    repo_root: Path = REPO_ROOT
    kafka_libs: Path = REPO_ROOT / ".local" / "kafka" / "libs"

    def __post_init__(self) -> None:
        if not self.home.is_absolute():
            raise ValueError(f"StackLayout.home must be absolute, got {self.home}")
        if not 0 <= self.port_offset <= 50_000:
            raise ValueError(f"port offset {self.port_offset} would leave the port range")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackLayout:
        """The layout named by ``SWITCHYARD_HOME`` (default ``.local``, relative to the current
        directory like the services' own settings) and ``SWITCHYARD_PORT_OFFSET`` (default 0)."""
        env = os.environ if environ is None else environ
        home = Path(env.get("SWITCHYARD_HOME") or ".local").expanduser().resolve()
        offset_text = env.get("SWITCHYARD_PORT_OFFSET") or "0"
        try:
            offset = int(offset_text)
        except ValueError:
            raise ValueError(
                f"SWITCHYARD_PORT_OFFSET must be an integer, got {offset_text!r}"
            ) from None
        libs = env.get("SWITCHYARD_KAFKA_LIBS")
        if libs:
            return cls(home=home, port_offset=offset, kafka_libs=Path(libs).resolve())
        return cls(home=home, port_offset=offset)

    # Ports ---------------------------------------------------------------------------------

    def port(self, base: int) -> int:
        return base + self.port_offset

    @property
    def kafka_port(self) -> int:
        return self.port(KAFKA_PORT)

    @property
    def kafka_controller_port(self) -> int:
        return self.port(KAFKA_CONTROLLER_PORT)

    @property
    def redis_port(self) -> int:
        return self.port(REDIS_PORT)

    @property
    def ingress_port(self) -> int:
        return self.port(INGRESS_PORT)

    @property
    def vendorsim_port(self) -> int:
        return self.port(VENDORSIM_PORT)

    @property
    def metering_port(self) -> int:
        return self.port(METERING_PORT)

    @property
    def router_port(self) -> int:
        return self.port(ROUTER_PORT)

    def worker_port(self, index: int) -> int:
        return self.port(FIRST_WORKER_PORT + index)

    # Addresses -----------------------------------------------------------------------------

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def clickhouse_dsn(self) -> str:
        return f"chdb://{self.clickhouse_dir}"

    @property
    def vendorsim_url(self) -> str:
        return f"http://127.0.0.1:{self.vendorsim_port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI SDK user sets as ``base_url``."""
        return f"http://127.0.0.1:{self.ingress_port}/v1"

    # Paths ---------------------------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        return self.home / "log"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def kafka_dir(self) -> Path:
        return self.home / "kafka"

    @property
    def kafka_data_dir(self) -> Path:
        return self.kafka_dir / "data"

    @property
    def redis_dir(self) -> Path:
        return self.home / "redis"

    @property
    def clickhouse_dir(self) -> Path:
        return self.home / "clickhouse"

    @property
    def admin_key_file(self) -> Path:
        return self.home / "admin_key"

    @property
    def routing_config_file(self) -> Path:
        return self.home / "routing.yaml"

    @property
    def stack_env_file(self) -> Path:
        return self.home / "stack.env"

    def log_file(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"

    def pid_file(self, component: str) -> Path:
        return self.run_dir / f"{component}.pid"

    # Environment ---------------------------------------------------------------------------

    def service_env(self, *, admin_key: str) -> dict[str, str]:
        """The ``SWITCHYARD_*`` variables every service of this stack gets (a worker also gets
        its own ``SWITCHYARD_WORKER_PORT``). Also what ``stack.env`` records."""
        return {
            "SWITCHYARD_HOME": str(self.home),
            "SWITCHYARD_PORT_OFFSET": str(self.port_offset),
            "SWITCHYARD_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "SWITCHYARD_REDIS_URL": self.redis_url,
            "SWITCHYARD_CLICKHOUSE_DSN": self.clickhouse_dsn,
            "SWITCHYARD_INGRESS_PORT": str(self.ingress_port),
            "SWITCHYARD_VENDORSIM_PORT": str(self.vendorsim_port),
            "SWITCHYARD_VENDORSIM_URL": self.vendorsim_url,
            "SWITCHYARD_METERING_PORT": str(self.metering_port),
            "SWITCHYARD_ROUTER_PORT": str(self.router_port),
            "SWITCHYARD_BASE_URL": self.base_url,
            "SWITCHYARD_ADMIN_KEY": admin_key,
            "SWITCHYARD_ROUTING_CONFIG": str(self.routing_config_file),
        }
