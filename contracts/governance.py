"""Governance records: projects, people, keys, roles and each project's limits and credit.

Each record is the whole current state of one entity, published to the compacted topic
``sy.governance.v1`` keyed ``<kind>:<id>``; a tombstone (a null value) under that key deletes
it. Every ingress and metering replica reads the topic from its start into memory
(``services.common.governance``), so Kafka, not Redis, is the system of record: losing Redis
loses no key, project, limit or grant, and a replica that starts replays them all.

An API key is stored only as the SHA-256 of its value, with a redacted form to show. A spend
alert's webhook signing secret is the one secret kept whole: signing needs it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from contracts._base import WireModel

# Roles a person holds in the organisation, and roles anyone holds in a project
# (services.common.access says what each may do).
OrgRole = Literal["owner", "reader", "analyst", "auditor"]
ProjectRole = Literal["owner", "member", "analyst", "auditor"]
ServiceAccountRole = Literal["owner", "member"]


class ProjectRecord(WireModel):
    kind: Literal["project"] = "project"
    id: str
    name: str
    created_at: int  # epoch seconds, as OpenAI's Admin API has it
    archived_at: int | None = None

    @property
    def active(self) -> bool:
        return self.archived_at is None


def _reader_only() -> list[OrgRole]:
    return ["reader"]


class UserRecord(WireModel):
    """A person of the organisation. ``roles``: their organisation roles (at least one)."""

    kind: Literal["user"] = "user"
    id: str
    email: str
    name: str | None = None
    roles: list[OrgRole] = Field(default_factory=_reader_only)
    created_at: int


class ProjectUserRecord(WireModel):
    """A person's role in one project; its id is ``<project id>:<user id>``."""

    kind: Literal["project_user"] = "project_user"
    id: str
    project_id: str
    user_id: str
    role: ProjectRole
    added_at: int

    @staticmethod
    def make_id(project_id: str, user_id: str) -> str:
        return f"{project_id}:{user_id}"


class ServiceAccountRecord(WireModel):
    kind: Literal["service_account"] = "service_account"
    id: str
    project_id: str
    name: str
    role: ServiceAccountRole = "member"
    created_at: int


class ApiKeyRecord(WireModel):
    """A project key: held by a service account of the project or by a person in it."""

    kind: Literal["api_key"] = "api_key"
    id: str
    project_id: str
    service_account_id: str | None = None
    user_id: str | None = None
    name: str
    redacted_value: str
    sha256: str  # hex digest of the key's value; the value itself is never stored
    created_at: int
    expires_at: int | None = None


class AdminKeyRecord(WireModel):
    """An organisation-level key for the Admin API. It acts with its owner's roles; without an
    owner, as the organisation's owner (like the bootstrap key)."""

    kind: Literal["admin_api_key"] = "admin_api_key"
    id: str
    name: str
    redacted_value: str
    sha256: str
    created_at: int
    expires_at: int | None = None
    user_id: str | None = None


class ModelAccess(WireModel):
    """Which models a project may use: only those listed (``allow_list``) or all but those
    (``deny_list``); canonical ids. Travels on the envelope so the router honours it too."""

    mode: Literal["allow_list", "deny_list"]
    model_ids: list[str] = Field(default_factory=list)

    def allows(self, canonical_id: str) -> bool:
        listed = canonical_id in self.model_ids
        return listed if self.mode == "allow_list" else not listed


class ModelRateLimit(WireModel):
    """A project's limits on one model as they travel on the envelope: the worker applies them
    to a model the request did not name (a route's, ``auto``'s or a fallback's choice)."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    requests_per_day: int | None = None


class ModelPermissionsRecord(WireModel):
    """A project's ``model_permissions``; its id is the project's."""

    kind: Literal["model_permissions"] = "model_permissions"
    id: str
    access: ModelAccess


class RateLimitRecord(WireModel):
    """A project's limits on one model; its id is ``<project id>:<rate limit id>``. A limit
    left None is not enforced."""

    kind: Literal["rate_limit"] = "rate_limit"
    id: str
    project_id: str
    model: str  # canonical id
    max_requests_per_1_minute: int | None = None
    max_tokens_per_1_minute: int | None = None
    max_requests_per_1_day: int | None = None


class SpendLimitRecord(WireModel):
    """A project's hard spend limit per calendar month (UTC); its id is the project's."""

    kind: Literal["spend_limit"] = "spend_limit"
    id: str
    threshold_cents: int
    interval: Literal["month"] = "month"


class CreditGrantRecord(WireModel):
    """Prepaid credit added to a project. Grants are never changed or deleted: the balance is
    their sum less what was spent (settled usage in ClickHouse)."""

    kind: Literal["credit_grant"] = "credit_grant"
    id: str
    project_id: str
    amount_usd: Decimal
    note: str | None = None
    created_at: int
    granted_by: str  # the key that granted it


class SpendAlertRecord(WireModel):
    """Calls ``webhook_url`` (signed with ``signing_secret``) once per month in which the
    project's spend reaches ``threshold_cents``."""

    kind: Literal["spend_alert"] = "spend_alert"
    id: str
    project_id: str
    threshold_cents: int
    interval: Literal["month"] = "month"
    webhook_url: str
    signing_secret: str
    created_at: int


class DataRetentionRecord(WireModel):
    """What a project keeps of its prompts and answers; its id is the project's. Without a
    record: nothing (zero data retention, the default)."""

    kind: Literal["data_retention"] = "data_retention"
    id: str
    # OpenAI's names: ``none`` (no retention control) keeps logs; the others keep nothing.
    type: Literal[
        "organization_default", "zero_data_retention", "enhanced_zero_data_retention", "none"
    ] = "organization_default"
    retention_days: int = 30  # for type "none": how long request logs are kept

    @property
    def keeps_text(self) -> bool:
        return self.type == "none"


GovernanceRecord = Annotated[
    ProjectRecord
    | UserRecord
    | ProjectUserRecord
    | ServiceAccountRecord
    | ApiKeyRecord
    | AdminKeyRecord
    | ModelPermissionsRecord
    | RateLimitRecord
    | SpendLimitRecord
    | CreditGrantRecord
    | SpendAlertRecord
    | DataRetentionRecord,
    Field(discriminator="kind"),
]


def record_key(kind: str, entity_id: str) -> bytes:
    return f"{kind}:{entity_id}".encode()
