"""The query of ``GET /v1/organization/audit_logs`` as OpenAI's clients send it, read into an
``AuditQuery``; a value that is wrong is an ``InvalidAuditQueryError`` naming the parameter.

OpenAI's SDKs send ranges as ``effective_at[gte]=...`` and lists as repeated ``project_ids[]=a``;
the bare names (``project_ids=a``) are taken as well. Parameters the endpoint does not know are
ignored, except a misspelt ``effective_at[...]`` bound, which would otherwise widen the listing
without a word.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from contracts.audit import AUDIT_ID, EVENT_TYPE
from services.metering.audit_store import MAX_LIMIT, AuditQuery

_BOUNDS = ("gt", "gte", "lt", "lte")
_LISTS = ("project_ids", "event_types", "actor_ids", "actor_emails", "resource_ids")
_MAX_VALUES = 100
_MAX_VALUE_CHARS = 512  # contracts.audit cuts names and targets there


class InvalidAuditQueryError(ValueError):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def parse_audit_query(params: Mapping[str, Sequence[str]]) -> AuditQuery:
    """``params``: each name with all the values it was given, in order."""
    for name in params:
        if name.startswith("effective_at") and name not in {f"effective_at[{b}]" for b in _BOUNDS}:
            raise InvalidAuditQueryError(
                name, f"Unknown parameter '{name}': use effective_at[gt|gte|lt|lte]."
            )
    bounds = {b: _non_negative(params, f"effective_at[{b}]") for b in _BOUNDS}
    lists = {name: _values(params, name) for name in _LISTS}
    for event_type in lists["event_types"]:
        if not EVENT_TYPE.match(event_type):
            raise InvalidAuditQueryError("event_types[]", f"Invalid event type '{event_type}'.")
    limit = _non_negative(params, "limit")
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise InvalidAuditQueryError("limit", f"limit must be between 1 and {MAX_LIMIT}.")
    after, before = _cursor(params, "after"), _cursor(params, "before")
    if after is not None and before is not None:
        raise InvalidAuditQueryError("before", "Give 'after' or 'before', not both.")
    tenant_only = _one(params, "tenant_only")
    if tenant_only is not None and tenant_only.lower() not in {"false", "0"}:
        # OpenAI's tenant-scoped events (role bindings of ChatGPT connectors) do not exist here.
        raise InvalidAuditQueryError("tenant_only", "Switchyard records no tenant-scoped events.")
    return AuditQuery(
        effective_at_gt=bounds["gt"],
        effective_at_gte=bounds["gte"],
        effective_at_lt=bounds["lt"],
        effective_at_lte=bounds["lte"],
        project_ids=frozenset(lists["project_ids"]),
        event_types=frozenset(lists["event_types"]),
        actor_ids=frozenset(lists["actor_ids"]),
        actor_emails=frozenset(lists["actor_emails"]),
        resource_ids=frozenset(lists["resource_ids"]),
        limit=20 if limit is None else limit,
        after=after,
        before=before,
    )


def _one(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name, ())
    if len(values) > 1:
        raise InvalidAuditQueryError(name, f"'{name}' was given more than once.")
    return values[0] if values else None


def _non_negative(params: Mapping[str, Sequence[str]], name: str) -> int | None:
    value = _one(params, name)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise InvalidAuditQueryError(name, f"'{name}' must be a non-negative integer.")
    return int(value)


def _values(params: Mapping[str, Sequence[str]], name: str) -> list[str]:
    values = [*params.get(f"{name}[]", ()), *params.get(name, ())]
    if len(values) > _MAX_VALUES:
        raise InvalidAuditQueryError(f"{name}[]", f"At most {_MAX_VALUES} values of '{name}[]'.")
    for value in values:
        if not value or len(value) > _MAX_VALUE_CHARS:
            raise InvalidAuditQueryError(
                f"{name}[]", f"Values of '{name}[]' are 1 to {_MAX_VALUE_CHARS} characters."
            )
    return values


def _cursor(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    value = _one(params, name)
    if value is not None and not AUDIT_ID.match(value):
        raise InvalidAuditQueryError(name, f"'{name}' must be an audit log id (audit_...).")
    return value
