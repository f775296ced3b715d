"""Audit events: who did what to which resource, and whether it was allowed; on ``sy.audit.v1``.

Every admin action, every refused request and a periodic summary of each key's use becomes one
``AuditEvent``. Metering writes them to ClickHouse's ``audit_log`` and serves them in the shape of
OpenAI's ``GET /v1/organization/audit_logs``.

An audit event never carries prompt or completion text, nor a presented key's value: ``details``
holds a handful of short scalar facts (a model id, a count, a limit), bounded in number and in
length, and nothing taken from a request body. Unknown fields of a message are dropped on
reading (``WireModel``), so an extra field cannot smuggle text into the table either.

Event types (``type``) are OpenAI's names where OpenAI has the event:
    project.created, project.updated, project.archived,
    service_account.created, service_account.deleted,
    api_key.created, api_key.deleted,
    user.added, user.updated, user.deleted,
    rate_limit.updated, rate_limit.deleted,
    role.assignment.created, role.assignment.deleted
and Switchyard's own where it has not:
    request.denied          a request refused by ingress; ``details["reason"]`` is a
                            ``DenialReason``, ``error_code`` the ``ErrorCode`` the caller got,
                            ``target_id`` the model asked for (when the model was the reason)
    api_key.used            one key's requests over a window (``KeyUseSummary``); ``target_id``
                            the key, ``details`` {count, window_start, window_end} (epoch seconds)
    credit.granted          prepaid credit added to a project; ``target_id`` the grant
    spend_limit.updated, spend_limit.deleted
    spend_alert.created, spend_alert.updated, spend_alert.deleted
    spend_alert.triggered   a project's spend reached an alert's threshold (actor: system)
    model_permissions.updated, model_permissions.deleted
    data_retention.updated
``type`` is a plain string on the wire, not this list: a newer producer may add a type, and an
older metering must still store it (the message rules in DESIGN.md).
"""

from __future__ import annotations

import re
import secrets
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from contracts._base import WireModel, now_ms

AUDIT_ID = re.compile(r"^audit_[0-9a-f]{24}$")
EVENT_TYPE = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
MAX_DETAILS = 32
MAX_DETAIL_CHARS = 512
# Snake case, as OpenAI names its fields: a detail becomes a JSON field of the served object.
_DETAIL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# ``id`` is the target's in the served object (services.metering.audit_render).
_RESERVED_DETAIL_KEYS = frozenset({"id"})


class AuditEventType(StrEnum):
    """The types Switchyard emits (see the module docstring); producers name them from here."""

    PROJECT_CREATED = "project.created"
    PROJECT_UPDATED = "project.updated"
    PROJECT_ARCHIVED = "project.archived"
    SERVICE_ACCOUNT_CREATED = "service_account.created"
    SERVICE_ACCOUNT_DELETED = "service_account.deleted"
    API_KEY_CREATED = "api_key.created"
    API_KEY_DELETED = "api_key.deleted"
    USER_ADDED = "user.added"
    USER_UPDATED = "user.updated"
    USER_DELETED = "user.deleted"
    RATE_LIMIT_UPDATED = "rate_limit.updated"
    RATE_LIMIT_DELETED = "rate_limit.deleted"
    ROLE_ASSIGNED = "role.assignment.created"
    ROLE_UNASSIGNED = "role.assignment.deleted"
    # Switchyard's own
    REQUEST_DENIED = "request.denied"
    API_KEY_USED = "api_key.used"
    CREDIT_GRANTED = "credit.granted"
    SPEND_LIMIT_UPDATED = "spend_limit.updated"
    SPEND_LIMIT_DELETED = "spend_limit.deleted"
    SPEND_ALERT_CREATED = "spend_alert.created"
    SPEND_ALERT_UPDATED = "spend_alert.updated"
    SPEND_ALERT_DELETED = "spend_alert.deleted"
    SPEND_ALERT_TRIGGERED = "spend_alert.triggered"
    MODEL_PERMISSIONS_UPDATED = "model_permissions.updated"
    MODEL_PERMISSIONS_DELETED = "model_permissions.deleted"
    DATA_RETENTION_UPDATED = "data_retention.updated"


# The types above that OpenAI's ``AuditLogEventType`` does not have.
SWITCHYARD_EVENT_TYPES: frozenset[str] = frozenset(
    {
        AuditEventType.REQUEST_DENIED,
        AuditEventType.API_KEY_USED,
        AuditEventType.CREDIT_GRANTED,
        AuditEventType.SPEND_LIMIT_UPDATED,
        AuditEventType.SPEND_LIMIT_DELETED,
        AuditEventType.SPEND_ALERT_CREATED,
        AuditEventType.SPEND_ALERT_UPDATED,
        AuditEventType.SPEND_ALERT_DELETED,
        AuditEventType.SPEND_ALERT_TRIGGERED,
        AuditEventType.MODEL_PERMISSIONS_UPDATED,
        AuditEventType.MODEL_PERMISSIONS_DELETED,
        AuditEventType.DATA_RETENTION_UPDATED,
    }
)


class DenialReason(StrEnum):
    """``details["reason"]`` of a ``request.denied`` event."""

    INVALID_API_KEY = "invalid_api_key"  # missing, unknown, deleted or expired key
    KEY_NOT_PERMITTED = "key_not_permitted"  # a valid key whose role may not call models
    MODEL_NOT_ALLOWED = "model_not_allowed"  # the project's model permissions forbid it
    RATE_LIMITED = "rate_limited"  # over a per-key or per-project rate limit
    INSUFFICIENT_CREDIT = "insufficient_credit"  # no credit left, or the spend limit reached


AuditOutcome = Literal["success", "denied", "failure"]
ApiKeyType = Literal["admin", "user", "service_account"]

# An optional identifier: absent, or not empty (the table stores absence as '').
_Id = Annotated[str, Field(min_length=1, max_length=256)]


def _short_text(value: object) -> object:
    if isinstance(value, str):
        return value[:MAX_DETAIL_CHARS] or None
    return value


# A name or an address shown beside the ids: cut to the bound and '' taken as absent rather than
# refused, so an odd project name or user agent never stops an action from being audited.
_Text = Annotated[str | None, BeforeValidator(_short_text)]
# A detail's value: a short scalar. Infinite and NaN floats are refused: JSON has no such number.
DetailValue = str | int | Annotated[float, Field(allow_inf_nan=False)] | bool | None


def new_audit_id() -> str:
    """``audit_`` and 24 random hex digits: unique without coordination, so an event keeps its
    id through every redelivery and metering can write it once."""
    return f"audit_{secrets.token_hex(12)}"


class AuditActor(WireModel):
    """Who acted: a key (an admin key, or a project key held by a user or a service account), a
    person's session, or Switchyard itself (a spend alert firing, a scheduled job)."""

    type: Literal["api_key", "session", "system"]
    api_key_id: _Id | None = None
    api_key_type: ApiKeyType | None = None
    user_id: _Id | None = None
    user_email: _Text = None
    service_account_id: _Id | None = None
    ip_address: _Text = None
    user_agent: _Text = None

    @classmethod
    def system(cls) -> AuditActor:
        return cls(type="system")


class AuditEvent(WireModel):
    """One audited action. ``ts_ms`` is when it happened; ``effective_at`` is the same instant in
    whole seconds, as OpenAI serves it (given one, the other is derived; given both, they must
    agree)."""

    schema_version: Literal[1] = 1
    id: Annotated[str, Field(pattern=AUDIT_ID.pattern)] = Field(default_factory=new_audit_id)
    type: Annotated[str, Field(max_length=64, pattern=EVENT_TYPE.pattern)]
    # Either may be given (see ``_one_instant``); neither means now.
    effective_at: Annotated[int, Field(ge=0)] = 0
    ts_ms: Annotated[int, Field(ge=0)] = 0
    project_id: _Id | None = None  # None: an organisation-level event
    project_name: _Text = None
    actor: AuditActor
    # The resource acted on. Text, not an id: a refused request's target may be the model name
    # the caller sent, which must be cut rather than refused.
    target_id: _Text = None
    outcome: AuditOutcome = "success"
    error_code: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    details: dict[str, DetailValue] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _one_instant(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        ts_ms, effective_at = data.get("ts_ms"), data.get("effective_at")
        if ts_ms is None and effective_at is None:
            ts_ms = now_ms()
        if ts_ms is None and isinstance(effective_at, int):
            ts_ms = effective_at * 1000
        if effective_at is None and isinstance(ts_ms, int):
            effective_at = ts_ms // 1000
        return {**data, "ts_ms": ts_ms, "effective_at": effective_at}

    @model_validator(mode="after")
    def _instants_agree(self) -> AuditEvent:
        if self.effective_at != self.ts_ms // 1000:
            raise ValueError("effective_at must be ts_ms in whole seconds")
        return self

    @field_validator("details")
    @classmethod
    def _bounded_details(cls, details: dict[str, DetailValue]) -> dict[str, DetailValue]:
        # A bound, not a filter for text: details are facts the producer chose, never a body.
        if len(details) > MAX_DETAILS:
            raise ValueError(f"at most {MAX_DETAILS} details")
        for key in details:
            if not _DETAIL_KEY.match(key) or key in _RESERVED_DETAIL_KEYS:
                # The key is not quoted: an error message may reach a log line.
                raise ValueError("detail keys are snake_case names of 1-64 characters, not 'id'")
        return {
            key: value[:MAX_DETAIL_CHARS] if isinstance(value, str) else value
            for key, value in details.items()
        }
