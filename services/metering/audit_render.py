"""Audit events as OpenAI's ``AuditLog`` objects, and a page of them as ``ListAuditLogsResponse``.

OpenAI's object: ``id``, ``type``, ``effective_at``, ``project`` {id, name}, ``actor`` and one
field named after the type holding what was acted on. That field holds ``id`` (the target) and
the event's details where OpenAI's schema puts them: a creation's payload under ``data``
(``project.created``, ``api_key.created``, ``user.added``...), an update's under
``changes_requested`` (``project.updated``, ``rate_limit.updated``...), anything else beside the
id. Switchyard's own types follow the same rule (``spend_alert.created`` -> ``data``,
``request.denied`` -> beside the id).

Where Switchyard knows more than OpenAI's object says, it adds fields rather than bending
OpenAI's: ``outcome`` (success, denied, failure) and ``error_code`` on every object, and the
caller's address on an API-key actor. Where OpenAI's enums have no room:
- an actor that is Switchyard itself (``system``) is served as ``actor: null``, which OpenAI's
  schema allows, having no system actor;
- an admin key's ``type`` is ``user`` when a person owns the key (OpenAI's admin keys are
  users'), and absent for the organisation's bootstrap key, as OpenAI's types are only ``user``
  and ``service_account``.
"""

from __future__ import annotations

from typing import Any

from contracts.audit import AuditActor, AuditEvent
from services.metering.audit_store import AuditPage

_CREATED_VERBS = frozenset({"created", "added"})
_UPDATED_VERBS = frozenset({"updated"})


def render_list(page: AuditPage) -> dict[str, Any]:
    data = [render_audit_log(event) for event in page.events]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": page.has_more,
    }


def render_audit_log(event: AuditEvent) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "effective_at": event.effective_at,
    }
    if event.project_id is not None:
        project = {"id": event.project_id}
        if event.project_name is not None:
            project["name"] = event.project_name
        rendered["project"] = project
    rendered["actor"] = _actor(event.actor)
    rendered[event.type] = _payload(event)
    rendered["outcome"] = event.outcome
    if event.error_code is not None:
        rendered["error_code"] = event.error_code
    return rendered


def _payload(event: AuditEvent) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if event.target_id is not None:
        payload["id"] = event.target_id
    if not event.details:
        return payload
    verb = event.type.rsplit(".", 1)[-1]
    if verb in _CREATED_VERBS:
        payload["data"] = dict(event.details)
    elif verb in _UPDATED_VERBS:
        payload["changes_requested"] = dict(event.details)
    else:
        payload.update(event.details)
    return payload


def _actor(actor: AuditActor) -> dict[str, Any] | None:
    if actor.type == "system":
        return None
    user = _user(actor)
    if actor.type == "session":
        session: dict[str, Any] = {}
        if user:
            session["user"] = user
        _add_address(session, actor)
        return {"type": "session", "session": session}
    api_key: dict[str, Any] = {}
    if actor.api_key_id is not None:
        api_key["id"] = actor.api_key_id
    key_type = _key_type(actor)
    if key_type is not None:
        api_key["type"] = key_type
    if user:
        api_key["user"] = user
    if actor.service_account_id is not None:
        api_key["service_account"] = {"id": actor.service_account_id}
    _add_address(api_key, actor)
    return {"type": "api_key", "api_key": api_key}


def _key_type(actor: AuditActor) -> str | None:
    if actor.api_key_type == "admin":
        return "user" if actor.user_id is not None else None
    return actor.api_key_type


def _user(actor: AuditActor) -> dict[str, str]:
    user: dict[str, str] = {}
    if actor.user_id is not None:
        user["id"] = actor.user_id
    if actor.user_email is not None:
        user["email"] = actor.user_email
    return user


def _add_address(into: dict[str, Any], actor: AuditActor) -> None:
    if actor.ip_address is not None:
        into["ip_address"] = actor.ip_address
    if actor.user_agent is not None:
        into["user_agent"] = actor.user_agent
