"""The parts of the local stack, in start order, and how to start and probe each.

Components start in tiers: every component of a tier is started together and the next tier
starts only once all of them are healthy. Infrastructure first (Kafka, Redis), then the
back-end services, and the ingress last, so that it never accepts a request nothing can serve.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from contracts.topics import PROVIDERS
from services.stack import _kafka, _redis
from services.stack._health import Probe, http_probe, kafka_probe, redis_probe
from services.stack._layout import StackLayout


class Tier(IntEnum):
    INFRA = 0
    BACKEND = 1
    EDGE = 2


@dataclass(frozen=True, kw_only=True)
class Component:
    name: str
    tier: Tier
    port: int
    # Built when the component starts, not when the list is made: finding java or the Kafka
    # jars may fail, and that must not break `status` or `down`.
    command: Callable[[], Sequence[str]]
    probe: Probe
    # Runs before each start: render a config file, format storage.
    prepare: Callable[[], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = 60.0


# Providers with a worker process of their own; the rest share "worker-others". A busy
# provider's pool can then be killed, restarted or scaled without touching the others.
DEDICATED_WORKER_PROVIDERS: tuple[str, ...] = ("openai", "anthropic")


def worker_groups() -> list[tuple[str, tuple[str, ...]]]:
    """(component name, providers it serves), one per worker process."""
    groups: list[tuple[str, tuple[str, ...]]] = [
        (f"worker-{p}", (p,)) for p in DEDICATED_WORKER_PROVIDERS
    ]
    others = tuple(p for p in PROVIDERS if p not in DEDICATED_WORKER_PROVIDERS)
    if others:
        groups.append(("worker-others", others))
    return groups


def switchyard_command(*args: str) -> Callable[[], Sequence[str]]:
    """The ``switchyard`` CLI of the running interpreter's environment. The console script reads
    better in ``ps``; ``python -c`` is the fallback when the project is not installed as a
    package (run from a source checkout)."""

    def command() -> Sequence[str]:
        script = Path(sys.executable).with_name("switchyard")
        if script.is_file():
            return [str(script), *args]
        return [sys.executable, "-c", "from services.cli import main; main()", *args]

    return command


def stack_components(layout: StackLayout) -> list[Component]:
    components = [
        Component(
            name="kafka",
            tier=Tier.INFRA,
            port=layout.kafka_port,
            command=lambda: _kafka.server_argv(layout),
            probe=kafka_probe(layout.kafka_port),
            prepare=lambda: _kafka.prepare(layout),
        ),
        Component(
            name="redis",
            tier=Tier.INFRA,
            port=layout.redis_port,
            command=lambda: _redis.server_argv(layout),
            probe=redis_probe(layout.redis_url),
            prepare=lambda: _redis.prepare(layout),
            start_timeout_s=20.0,
        ),
        _service(
            "vendorsim", layout.vendorsim_port, "vendorsim", "--port", str(layout.vendorsim_port)
        ),
        _service("metering", layout.metering_port, "metering"),
        _service("router", layout.router_port, "router"),
    ]
    for index, (name, providers) in enumerate(worker_groups()):
        port = layout.worker_port(index)
        args = [arg for provider in providers for arg in ("--provider", provider)]
        components.append(
            _service(name, port, "worker", *args, env={"SWITCHYARD_WORKER_PORT": str(port)})
        )
    components.append(_service("ingress", layout.ingress_port, "ingress", tier=Tier.EDGE))
    return components


def _service(
    name: str,
    port: int,
    *args: str,
    tier: Tier = Tier.BACKEND,
    env: dict[str, str] | None = None,
) -> Component:
    return Component(
        name=name,
        tier=tier,
        port=port,
        command=switchyard_command(*args),
        probe=http_probe(port),
        env=env or {},
    )
