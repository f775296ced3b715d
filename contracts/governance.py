"""Governance records: projects, their service accounts, and the API keys those hold.

Each record is the whole current state of one entity, published to the compacted topic
``sy.governance.v1`` keyed ``<kind>:<id>``; a tombstone (a null value) under that key deletes
it. Every ingress replica reads the topic from its start into memory
(``services.common.governance``), so Kafka, not Redis, is the system of record: losing Redis
loses no key or project, and a replica that starts replays them all.

An API key is stored only as the SHA-256 of its value, with a redacted form to show.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from contracts._base import WireModel


class ProjectRecord(WireModel):
    kind: Literal["project"] = "project"
    id: str
    name: str
    created_at: int  # epoch seconds, as OpenAI's Admin API has it
    archived_at: int | None = None

    @property
    def active(self) -> bool:
        return self.archived_at is None


class ServiceAccountRecord(WireModel):
    kind: Literal["service_account"] = "service_account"
    id: str
    project_id: str
    name: str
    role: Literal["member", "none"] = "member"
    created_at: int


class ApiKeyRecord(WireModel):
    kind: Literal["api_key"] = "api_key"
    id: str
    project_id: str
    service_account_id: str
    name: str
    redacted_value: str
    sha256: str  # hex digest of the key's value; the value itself is never stored
    created_at: int
    expires_at: int | None = None


class ModelAccess(WireModel):
    """Which models a project may use: only those listed (``allow_list``) or all but those
    (``deny_list``); canonical ids. Travels on the envelope so the router honours it too."""

    mode: Literal["allow_list", "deny_list"]
    model_ids: list[str] = Field(default_factory=list)

    def allows(self, canonical_id: str) -> bool:
        listed = canonical_id in self.model_ids
        return listed if self.mode == "allow_list" else not listed


class ModelPermissionsRecord(WireModel):
    """A project's ``model_permissions``; its id is the project's."""

    kind: Literal["model_permissions"] = "model_permissions"
    id: str
    access: ModelAccess


GovernanceRecord = Annotated[
    ProjectRecord | ServiceAccountRecord | ApiKeyRecord | ModelPermissionsRecord,
    Field(discriminator="kind"),
]


def record_key(kind: str, entity_id: str) -> bytes:
    return f"{kind}:{entity_id}".encode()
