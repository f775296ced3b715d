"""What every Admin API route shares: permission checks, reading bodies, OpenAI's list shape,
writing records to the governance topic, and the audit entry each change leaves."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from fastapi import Request

from contracts.audit import AuditEvent
from contracts.errors import ErrorCode, ErrorInfo
from contracts.governance import GovernanceRecord, ProjectRecord
from services.common.access import KeyRing, Permission, Principal
from services.common.audit import AuditTrail
from services.common.governance import GovernanceUnavailable, GovernanceView, GovernanceWriter
from services.ingress.auditing import actor_of
from services.ingress.body import read_json_body
from services.ingress.errors import ApiError
from services.ingress.settings import IngressSettings

log = logging.getLogger(__name__)

_DEFAULT_LIMIT = 20
_MAX_LIMIT = 100
MAX_NAME = 256
# A year, as OpenAI allows for admin keys' ``expires_in_seconds``.
MAX_KEY_LIFETIME_S = 365 * 24 * 3600

_T = TypeVar("_T")


def view_of(request: Request) -> GovernanceView:
    keys: KeyRing = request.app.state.keys
    return keys.governance


def require(principal: Principal, permission: Permission, project_id: str | None = None) -> None:
    if not principal.can(permission, project_id):
        where = f" in project '{project_id}'" if project_id else ""
        raise ApiError(
            ErrorInfo(
                code=ErrorCode.PERMISSION_DENIED,
                message=f"This key lacks the permission '{permission.value}'{where}.",
            )
        )


def project_for(
    request: Request, principal: Principal, project_id: str, permission: Permission
) -> ProjectRecord:
    """The project a route works on, once the caller is known to hold ``permission`` in it."""
    require(principal, permission, project_id)
    project = view_of(request).projects.get(project_id)
    if project is None:
        raise not_found("project", project_id)
    return project


def active(project: ProjectRecord) -> None:
    if not project.active:
        raise invalid(f"Project '{project.id}' is archived and cannot be changed.")


def not_found(what: str, entity_id: str) -> ApiError:
    return ApiError(
        ErrorInfo(code=ErrorCode.NOT_FOUND, message=f"No {what} with id '{entity_id}'.")
    )


def invalid(message: str, *, param: str | None = None) -> ApiError:
    return ApiError(ErrorInfo(code=ErrorCode.INVALID_REQUEST, message=message, param=param))


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def now_s() -> int:
    return int(time.time())


async def json_object(request: Request) -> dict[str, Any]:
    settings: IngressSettings = request.app.state.settings
    body = await read_json_body(request, limit=settings.max_body_bytes)
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object.")
    return body


def name_in(body: dict[str, Any], *, required: bool, field: str = "name") -> str | None:
    name = body.get(field)
    if name is None and not required:
        return None
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise invalid(
            f"'{field}' must be a non-empty string of at most {MAX_NAME} characters.", param=field
        )
    return name.strip()


def choice_in(body: dict[str, Any], field: str, allowed: Sequence[str], default: str) -> str:
    value = body.get(field, default)
    if value not in allowed:
        raise invalid(f"'{field}' must be one of: {', '.join(allowed)}.", param=field)
    return str(value)


def expiry_in(body: dict[str, Any], principal: Principal) -> int | None:
    """``expires_in_seconds`` (OpenAI's field for admin keys, used for every key here) as an
    absolute time; None: the key does not expire. Never later than the key that makes it: an
    expiring key must not mint itself a lasting one."""
    seconds = body.get("expires_in_seconds")
    if seconds is None:
        return principal.expires_at
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise invalid("'expires_in_seconds' must be an integer.", param="expires_in_seconds")
    if not 1 <= seconds <= MAX_KEY_LIFETIME_S:
        raise invalid(
            f"'expires_in_seconds' must be from 1 to {MAX_KEY_LIFETIME_S}.",
            param="expires_in_seconds",
        )
    chosen = now_s() + seconds
    return chosen if principal.expires_at is None else min(chosen, principal.expires_at)


def page(
    items: Sequence[_T],
    request: Request,
    render: Callable[[_T], dict[str, Any]],
    id_of: Callable[[_T], str],
) -> dict[str, Any]:
    """OpenAI's list shape over ``items`` (oldest first): ``limit`` 1..100 (default 20) and
    ``after``, an id the page starts after."""
    raw_limit = request.query_params.get("limit", str(_DEFAULT_LIMIT))
    # ASCII digits only (``"²".isdigit()`` holds), and few of them.
    if (
        not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 3)
        or not 1 <= int(raw_limit) <= _MAX_LIMIT
    ):
        raise invalid(f"'limit' must be an integer from 1 to {_MAX_LIMIT}.", param="limit")
    limit = int(raw_limit)
    after = request.query_params.get("after")
    start = 0
    if after is not None:
        ids = [id_of(item) for item in items]
        if after not in ids:
            raise invalid(f"'after' names no object of this list: '{after}'.", param="after")
        start = ids.index(after) + 1
    chosen = items[start : start + limit]
    return {
        "object": "list",
        "data": [render(item) for item in chosen],
        "first_id": id_of(chosen[0]) if chosen else None,
        "last_id": id_of(chosen[-1]) if chosen else None,
        "has_more": start + limit < len(items),
    }


def by_age(records: Iterable[_T], created: Callable[[_T], int]) -> list[_T]:
    """Oldest first. ``created_at`` has whole seconds only: within one second, the order the
    records were written in (every replica applies the topic in one order, and the view's
    dicts keep it), which a stable sort preserves."""
    return sorted(records, key=created)


async def commit(
    request: Request,
    principal: Principal,
    *,
    event: str,
    put: Sequence[GovernanceRecord] = (),
    delete: Sequence[tuple[str, str]] = (),
    project: ProjectRecord | None = None,
    target_id: str | None = None,
    details: dict[str, str | int | float | bool | None] | None = None,
) -> None:
    """Write the records (then the tombstones) and leave an audit entry for the change. The
    change is made once the governance topic has it; the audit entry follows it."""
    writer: GovernanceWriter = request.app.state.governance
    try:
        for record in put:
            await writer.put(record)
        for kind, entity_id in delete:
            await writer.delete(kind, entity_id)
    except GovernanceUnavailable as exc:
        raise ApiError(
            ErrorInfo(
                code=ErrorCode.UNAVAILABLE,
                message="The change could not be recorded right now; try again shortly.",
                retryable=True,
                retry_after_s=1.0,
            )
        ) from exc
    trail: AuditTrail = request.app.state.audit
    entry = AuditEvent(
        type=event,
        actor=actor_of(principal, view_of(request), request),
        project_id=project.id if project else None,
        project_name=project.name if project else None,
        target_id=target_id,
        outcome="success",
        details=details or {},
    )
    try:
        await trail.record(entry)
    except Exception:  # the change stands; the broker took it a moment ago
        log.exception("audit entry %s for %s could not be written", entry.id, event)
