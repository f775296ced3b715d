"""Who an audit entry names as its actor: the key, what kind of key, and the person or service
account holding it. Never anything of a request's content."""

from __future__ import annotations

from starlette.requests import Request

from contracts.audit import ApiKeyType, AuditActor
from services.common.access import KeyKind, Principal
from services.common.governance import GovernanceView

_KEY_TYPES: dict[KeyKind, ApiKeyType] = {
    KeyKind.BOOTSTRAP: "admin",
    KeyKind.ADMIN_KEY: "admin",
    KeyKind.SERVICE_ACCOUNT: "service_account",
    KeyKind.USER: "user",
}


def actor_of(
    principal: Principal | None, view: GovernanceView, request: Request | None = None
) -> AuditActor:
    """``principal`` None: a caller whose key was refused (the actor is unknown)."""
    client = request.client.host if request is not None and request.client else None
    agent = request.headers.get("user-agent") if request is not None else None
    if principal is None:
        return AuditActor(type="api_key", ip_address=client, user_agent=agent)
    user = view.users.get(principal.user_id) if principal.user_id else None
    return AuditActor(
        type="api_key",
        api_key_id=principal.key_id,
        api_key_type=_KEY_TYPES[principal.kind],
        user_id=principal.user_id,
        user_email=user.email if user else None,
        service_account_id=principal.service_account_id,
        ip_address=client,
        user_agent=agent,
    )
