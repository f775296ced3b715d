"""The topic registry: every Kafka topic Switchyard uses, with its settings.

Topics are created from this registry at start-up by ``services.common.kafka.ensure_topics``;
creating is idempotent, so every service may do it. Names carry a version: a new, incompatible
message shape gets a new topic, never a changed meaning on an old one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS

# The largest message any topic takes. A request body may be 20 MiB (ingress refuses more with a
# 413); sealed, it travels base64-encoded (x4/3) inside its envelope, and the dispatch plan
# carries that envelope whole. 48 MiB holds that with room to spare. The broker's
# ``message.max.bytes`` (deploy/kafka/server.properties) and the producers' ``max_request_size``
# (services.common.kafka) are set to the same figure: all three must move together.
MAX_MESSAGE_BYTES = 48 * 1024 * 1024


class Lane(StrEnum):
    """Interactive traffic and batch traffic get separate dispatch topics, so a million-line
    batch never queues in front of a person waiting for an answer."""

    INTERACTIVE = "interactive"
    BATCH = "batch"


@dataclass(frozen=True, kw_only=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: str = "delete"
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "max.message.bytes": str(MAX_MESSAGE_BYTES),
            **self.extra_config,
        }


REQUESTS = TopicSpec(name="sy.requests.v1", partitions=6, retention_ms=_DAY_MS)
RESULTS = TopicSpec(name="sy.results.v1", partitions=6, retention_ms=7 * _DAY_MS)
USAGE = TopicSpec(name="sy.usage.v1", partitions=6, retention_ms=7 * _DAY_MS)
AUDIT = TopicSpec(name="sy.audit.v1", partitions=3, retention_ms=30 * _DAY_MS)
DLQ = TopicSpec(name="sy.dlq.v1", partitions=1, retention_ms=30 * _DAY_MS)
# Prompts and answers of projects that opted into retention (contracts.request_log), on their
# way to ClickHouse. A day: a transit buffer, not a store; nothing else ever carries text.
REQUEST_LOG = TopicSpec(name="sy.request_log.v1", partitions=3, retention_ms=_DAY_MS)
# Governance state (projects, service accounts, API keys): the system of record. Compacted, so
# the latest record of every entity is kept for ever and a deleted one leaves a tombstone; one
# partition, so every reader applies the changes in one order (contracts.governance).
GOVERNANCE = TopicSpec(
    name="sy.governance.v1", partitions=1, retention_ms=-1, cleanup_policy="compact"
)

# Providers with a dispatch topic pair. Adding a provider means adding it here, to the
# catalogue, and to services.workers.providers.
PROVIDERS: tuple[str, ...] = (
    "openai",
    "anthropic",
    "gemini",
    "deepseek",
    "mistral",
    "xai",
    "moonshot",
    "dashscope",
    "zai",
    "minimax",
)


def dispatch_topic(provider: str, lane: Lane = Lane.INTERACTIVE) -> TopicSpec:
    suffix = "" if lane is Lane.INTERACTIVE else f".{lane.value}"
    return TopicSpec(
        name=f"sy.dispatch.{provider}{suffix}.v1",
        partitions=6,
        retention_ms=_DAY_MS,
    )


def all_topics() -> list[TopicSpec]:
    dispatch = [dispatch_topic(p, lane) for p in PROVIDERS for lane in Lane]
    return [REQUESTS, *dispatch, RESULTS, USAGE, AUDIT, DLQ, GOVERNANCE, REQUEST_LOG]
