"""Governance state in memory, read from its system of record, the compacted topic
``sy.governance.v1`` (``contracts.governance``).

``GovernanceFeed`` reads the topic from its first offset at start, then follows it: a key
created, revoked or a project archived on one replica takes effect on every replica as soon as
their feeds read the record (milliseconds; the revocation test holds it to a second).
``GovernanceWriter`` publishes a record and waits until this process's own feed has applied it,
so an admin call that returns has its effect visible here (read-your-writes).

No Redis: losing or wiping Redis loses no project and no key, and nothing needs rebuilding.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import TypeAdapter

from contracts.governance import (
    AdminKeyRecord,
    ApiKeyRecord,
    CreditGrantRecord,
    DataRetentionRecord,
    GovernanceRecord,
    ModelAccess,
    ModelPermissionsRecord,
    ProjectRecord,
    ProjectUserRecord,
    RateLimitRecord,
    ServiceAccountRecord,
    SpendAlertRecord,
    SpendLimitRecord,
    UserRecord,
    record_key,
)
from contracts.topics import GOVERNANCE

log = logging.getLogger(__name__)

_RECORD: TypeAdapter[GovernanceRecord] = TypeAdapter(GovernanceRecord)
_RETRY_S = 1.0
# An admin call waits this long for its change to be written and applied, then says it could not.
_WRITE_TIMEOUT_S = 10.0


def key_sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# Which of the view's tables holds each kind of record.
_TABLES: dict[str, str] = {
    "project": "projects",
    "user": "users",
    "project_user": "project_users",
    "service_account": "service_accounts",
    "api_key": "api_keys",
    "admin_api_key": "admin_keys",
    "model_permissions": "model_permissions",
    "rate_limit": "rate_limits",
    "spend_limit": "spend_limits",
    "credit_grant": "credit_grants",
    "spend_alert": "spend_alerts",
    "data_retention": "data_retention",
}


@dataclass
class GovernanceView:
    """The current records, by id, with the indexes the request path reads: keys by the
    digest of their value, rate limits by project and model, credit granted by project."""

    projects: dict[str, ProjectRecord] = field(default_factory=dict)
    users: dict[str, UserRecord] = field(default_factory=dict)
    project_users: dict[str, ProjectUserRecord] = field(default_factory=dict)
    service_accounts: dict[str, ServiceAccountRecord] = field(default_factory=dict)
    api_keys: dict[str, ApiKeyRecord] = field(default_factory=dict)
    admin_keys: dict[str, AdminKeyRecord] = field(default_factory=dict)
    model_permissions: dict[str, ModelPermissionsRecord] = field(default_factory=dict)
    rate_limits: dict[str, RateLimitRecord] = field(default_factory=dict)
    spend_limits: dict[str, SpendLimitRecord] = field(default_factory=dict)
    credit_grants: dict[str, CreditGrantRecord] = field(default_factory=dict)
    spend_alerts: dict[str, SpendAlertRecord] = field(default_factory=dict)
    data_retention: dict[str, DataRetentionRecord] = field(default_factory=dict)
    _keys_by_digest: dict[str, ApiKeyRecord | AdminKeyRecord] = field(default_factory=dict)
    _limits_by_model: dict[tuple[str, str], RateLimitRecord] = field(default_factory=dict)
    _granted: dict[str, Decimal] = field(default_factory=dict)

    def apply(self, key: bytes, value: bytes | None) -> None:
        kind, _, entity_id = key.decode().partition(":")
        table_name = _TABLES.get(kind)
        if table_name is None:
            raise ValueError(f"unknown governance record kind {kind!r}")
        table: dict[str, Any] = getattr(self, table_name)
        old = table.pop(entity_id, None)
        if old is not None:
            self._unindex(old)
        if value is None:
            return
        record = _RECORD.validate_json(value)
        table[record.id] = record
        self._index(record)

    def _index(self, record: Any) -> None:
        if isinstance(record, ApiKeyRecord | AdminKeyRecord):
            self._keys_by_digest[record.sha256] = record
        elif isinstance(record, RateLimitRecord):
            self._limits_by_model[(record.project_id, record.model)] = record
        elif isinstance(record, CreditGrantRecord):
            granted = self._granted.get(record.project_id, Decimal(0))
            self._granted[record.project_id] = granted + record.amount_usd

    def _unindex(self, record: Any) -> None:
        if isinstance(record, ApiKeyRecord | AdminKeyRecord):
            self._keys_by_digest.pop(record.sha256, None)
        elif isinstance(record, RateLimitRecord):
            self._limits_by_model.pop((record.project_id, record.model), None)
        elif isinstance(record, CreditGrantRecord):
            self._granted[record.project_id] -= record.amount_usd

    def key_for(
        self, value: str, *, now_s: float | None = None
    ) -> ApiKeyRecord | AdminKeyRecord | None:
        """The live key with this value: not deleted, not expired, and whoever holds it still
        there (a project key's project also not archived)."""
        found = self._keys_by_digest.get(key_sha256(value))
        if found is None:
            return None
        if found.expires_at is not None and found.expires_at <= (now_s or time.time()):
            return None
        if found.user_id is not None and found.user_id not in self.users:
            return None
        if isinstance(found, AdminKeyRecord):
            return found
        project = self.projects.get(found.project_id)
        if project is None or not project.active:
            return None
        if found.service_account_id is not None:
            if found.service_account_id not in self.service_accounts:
                return None
        elif found.user_id is None or self.project_role(found.project_id, found.user_id) is None:
            return None  # a person's key lapses when they leave the project
        return found

    def project_role(self, project_id: str, user_id: str) -> str | None:
        member = self.project_users.get(ProjectUserRecord.make_id(project_id, user_id))
        return member.role if member else None

    def roles_in_projects(self, user_id: str) -> dict[str, str]:
        return {m.project_id: m.role for m in self.project_users.values() if m.user_id == user_id}

    def model_access(self, project_id: str) -> ModelAccess | None:
        found = self.model_permissions.get(project_id)
        return found.access if found else None

    def rate_limit(self, project_id: str, model: str) -> RateLimitRecord | None:
        return self._limits_by_model.get((project_id, model))

    def granted_usd(self, project_id: str) -> Decimal | None:
        """Credit granted to the project; None: it has never had any (not prepaid)."""
        return self._granted.get(project_id)


class GovernanceFeed:
    """This process's ``GovernanceView``, following the topic. ``start`` returns once every
    record that existed when it was called has been applied."""

    def __init__(self, bootstrap: str, *, client_id: str) -> None:
        self.view = GovernanceView()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            group_id=None,  # every process reads everything; no offsets to commit
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )
        self._partition = TopicPartition(GOVERNANCE.name, 0)
        self._applied = -1  # the offset of the last record applied
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.assign([self._partition])
        await self._consumer.seek_to_beginning(self._partition)
        end = (await self._consumer.end_offsets([self._partition]))[self._partition]
        self._task = asyncio.create_task(self._follow(), name="governance-feed")
        await self.wait_for(end - 1)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def wait_for(self, offset: int, timeout_s: float = 30.0) -> None:
        """Until the record at ``offset`` (and every one before it) has been applied."""
        async with asyncio.timeout(timeout_s), self._progress:
            await self._progress.wait_for(lambda: self._applied >= offset)

    async def _follow(self) -> None:
        while True:
            try:
                batches = await self._consumer.getmany(self._partition, timeout_ms=1000)
            except KafkaError as exc:
                # Kafka away: the view keeps what it has (keys keep working) and the feed
                # carries on from its position once the broker is back.
                log.warning("governance feed paused: %s", exc)
                await asyncio.sleep(_RETRY_S)
                continue
            last = self._applied
            for record in batches.get(self._partition, []):
                if record.key is None:
                    continue
                try:
                    self.view.apply(record.key, record.value)
                except ValueError as exc:  # a ValidationError or a bad key, too
                    # A record this build cannot read (from a newer one) must not stop the
                    # feed: the rest of the state still has to apply.
                    log.error("governance record at offset %d skipped: %s", record.offset, exc)
                last = record.offset
            if last != self._applied:
                async with self._progress:
                    self._applied = last
                    self._progress.notify_all()


class GovernanceUnavailable(Exception):
    """The record could not be written (Kafka away) or not seen applied in time."""


class GovernanceWriter:
    """Publishes records and returns once ``feed`` has applied them; raises
    ``GovernanceUnavailable`` when it cannot say that the change was made."""

    def __init__(self, producer: AIOKafkaProducer, feed: GovernanceFeed) -> None:
        self._producer = producer
        self._feed = feed

    async def put(self, record: GovernanceRecord) -> None:
        await self._publish(record_key(record.kind, record.id), record.to_bytes())

    async def delete(self, kind: str, entity_id: str) -> None:
        await self._publish(record_key(kind, entity_id), None)

    async def _publish(self, key: bytes, value: bytes | None) -> None:
        try:
            async with asyncio.timeout(_WRITE_TIMEOUT_S):
                sent = await self._producer.send_and_wait(
                    GOVERNANCE.name, value, key=key, partition=0
                )
            await self._feed.wait_for(sent.offset, timeout_s=_WRITE_TIMEOUT_S)
        except (KafkaError, TimeoutError) as exc:
            raise GovernanceUnavailable(str(exc) or type(exc).__name__) from exc
