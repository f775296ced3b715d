"""Money: a project's prepaid ``credit`` (Switchyard's addition to OpenAI's Admin API) and its
``spend_alerts``.

Credit is granted by the organisation's owners, in grants that are never changed or deleted:
each is a record on the governance topic. What was spent is settled usage, priced by metering;
the balance is their difference, less the holds of requests still running
(``services.common.credit``). A project that has never had a grant is not prepaid: nothing
stops it for want of credit (its spend limit still does).

A spend alert calls a webhook, signed, once per month in which the project's spend reaches its
threshold (``services.ingress.spend_alerts``). OpenAI's alerts send email; Switchyard sends no
email, so its channel is ``{"type": "webhook", "url": ...}``, and the signing secret is shown
once, when the alert is created.
"""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request

from contracts.governance import CreditGrantRecord, SpendAlertRecord
from services.common.access import Permission
from services.common.credit import nanos_to_usd
from services.ingress.admission import Admission
from services.ingress.deps import PrincipalDep
from services.ingress.routes.organization._shared import (
    active,
    by_age,
    commit,
    invalid,
    json_object,
    new_id,
    not_found,
    now_s,
    page,
    project_for,
    require,
    view_of,
)
from services.ingress.routes.organization.controls import cents_in

router = APIRouter()


def _admission(request: Request) -> Admission:
    admission: Admission = request.app.state.admission
    return admission


# A grant is at most a million dollars, to the micro-dollar: a typo of six zeros is refused.
_MAX_GRANT = Decimal(1_000_000)
_GRANT_QUANTUM = Decimal("0.000001")
_MAX_NOTE = 512


def _usd(amount: Decimal) -> str:
    return f"{amount:f}"


def _grant_json(grant: CreditGrantRecord) -> dict[str, Any]:
    return {
        "object": "project.credit_grant",
        "id": grant.id,
        "amount": _usd(grant.amount_usd),
        "currency": "USD",
        "note": grant.note,
        "created_at": grant.created_at,
    }


@router.get("/projects/{project_id}/credit")
async def retrieve_credit(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    """The balance: granted less spent (settled usage, each call rounded up to a billionth of
    a dollar) less held (the maximum cost of requests still running)."""
    project_for(request, principal, project_id, Permission.CREDIT_READ)
    view = view_of(request)
    snapshot = await _admission(request).snapshot(project_id)
    granted = view.granted_usd(project_id) or Decimal(0)
    spent, held = nanos_to_usd(snapshot.spent_nanos), nanos_to_usd(snapshot.held_nanos)
    grants = by_age(
        (g for g in view.credit_grants.values() if g.project_id == project_id),
        lambda g: g.created_at,
    )
    return {
        "object": "project.credit",
        "project_id": project_id,
        "currency": "USD",
        "prepaid": view.granted_usd(project_id) is not None,
        "granted": _usd(granted),
        "spent": _usd(spent),
        "held": _usd(held),
        "available": _usd(granted - spent - held),
        "month_spent": _usd(nanos_to_usd(snapshot.month_spent_nanos)),
        "grants": [_grant_json(g) for g in grants],
    }


@router.post("/projects/{project_id}/credit/grants")
async def grant_credit(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    """Top up: ``amount`` in dollars, as a string (or a JSON number), up to six decimals."""
    require(principal, Permission.CREDIT_WRITE)
    project = project_for(request, principal, project_id, Permission.PROJECT_READ)
    body = await json_object(request)
    raw, note = body.get("amount"), body.get("note")
    try:
        amount = (
            Decimal(str(raw)) if isinstance(raw, str | int) and not isinstance(raw, bool) else None
        )
    except InvalidOperation:
        amount = None
    if isinstance(raw, float):
        amount = Decimal(repr(raw))  # what the JSON said, not the float's binary expansion
    if (
        amount is None
        or not amount.is_finite()
        or not Decimal(0) < amount <= _MAX_GRANT
        or amount != amount.quantize(_GRANT_QUANTUM)
    ):
        raise invalid(
            f"'amount' must be a number of dollars above 0 and at most {_MAX_GRANT}, "
            "with at most six decimals.",
            param="amount",
        )
    if note is not None and (not isinstance(note, str) or len(note) > _MAX_NOTE):
        raise invalid(f"'note' must be a string of at most {_MAX_NOTE} characters.", param="note")
    active(project)
    grant = CreditGrantRecord(
        id=new_id("grant"),
        project_id=project_id,
        amount_usd=amount.normalize() if amount == amount.to_integral() else amount,
        note=note,
        created_at=now_s(),
        granted_by=principal.key_id,
    )
    await commit(
        request,
        principal,
        event="credit.granted",
        put=[grant],
        project=project,
        target_id=grant.id,
        details={"amount_usd": _usd(grant.amount_usd)},
    )
    await _admission(request).prepare(project_id)
    return _grant_json(grant)


# -- spend alerts ---------------------------------------------------------------------------


def _alert_json(alert: SpendAlertRecord, *, full: bool = True) -> dict[str, Any]:
    """``full`` False: the webhook's address without its path and query, which often hold a
    token (a chat tool's incoming webhook): shown whole to those who may change the alert."""
    url = alert.webhook_url
    if not full:
        parts = urlsplit(url)
        url = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/..."
    return {
        "id": alert.id,
        "object": "project.spend_alert",
        "threshold_amount": alert.threshold_cents,
        "currency": "USD",
        "interval": "month",
        "notification_channel": {"type": "webhook", "url": url},
    }


def _webhook_url(body: dict[str, Any]) -> str:
    channel = body.get("notification_channel")
    if not isinstance(channel, dict) or channel.get("type") != "webhook":
        raise invalid(
            '\'notification_channel\' must be {"type": "webhook", "url": ...}: '
            "Switchyard sends no email.",
            param="notification_channel",
        )
    url = channel.get("url")
    parts = urlsplit(url) if isinstance(url, str) and len(url) <= 2048 else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(
            "'notification_channel.url' must be an http(s) URL.", param="notification_channel"
        )
    return str(url)


def _alert(request: Request, project_id: str, alert_id: str) -> SpendAlertRecord:
    alert = view_of(request).spend_alerts.get(alert_id)
    if alert is None or alert.project_id != project_id:
        raise not_found("spend alert", alert_id)
    return alert


@router.get("/projects/{project_id}/spend_alerts")
async def list_spend_alerts(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project_for(request, principal, project_id, Permission.PROJECT_READ)
    alerts = by_age(
        (a for a in view_of(request).spend_alerts.values() if a.project_id == project_id),
        lambda a: a.created_at,
    )
    if request.query_params.get("order") == "desc":
        alerts.reverse()
    full = principal.can(Permission.PROJECT_WRITE, project_id)
    return page(alerts, request, lambda a: _alert_json(a, full=full), lambda a: a.id)


@router.post("/projects/{project_id}/spend_alerts")
async def create_spend_alert(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.PROJECT_WRITE)
    body = await json_object(request)
    cents = cents_in(body, minimum=0)
    url = _webhook_url(body)
    active(project)
    alert = SpendAlertRecord(
        id=new_id("alert"),
        project_id=project_id,
        threshold_cents=cents,
        webhook_url=url,
        signing_secret="whsec_" + secrets.token_urlsafe(32),
        created_at=now_s(),
    )
    await commit(
        request,
        principal,
        event="spend_alert.created",
        put=[alert],
        project=project,
        target_id=alert.id,
        details={"threshold_cents": cents},
    )
    await _admission(request).prepare(project_id)
    # The secret the receiver checks signatures with: shown this once.
    return {**_alert_json(alert), "signing_secret": alert.signing_secret}


@router.get("/projects/{project_id}/spend_alerts/{alert_id}")
async def retrieve_spend_alert(
    project_id: str, alert_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project_for(request, principal, project_id, Permission.PROJECT_READ)
    full = principal.can(Permission.PROJECT_WRITE, project_id)
    return _alert_json(_alert(request, project_id, alert_id), full=full)


@router.post("/projects/{project_id}/spend_alerts/{alert_id}")
async def update_spend_alert(
    project_id: str, alert_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.PROJECT_WRITE)
    alert = _alert(request, project_id, alert_id)
    body = await json_object(request)
    alert = alert.model_copy(
        update={"threshold_cents": cents_in(body, minimum=0), "webhook_url": _webhook_url(body)}
    )
    await commit(
        request,
        principal,
        event="spend_alert.updated",
        put=[alert],
        project=project,
        target_id=alert.id,
        details={"threshold_cents": alert.threshold_cents},
    )
    return _alert_json(alert)


@router.delete("/projects/{project_id}/spend_alerts/{alert_id}")
async def delete_spend_alert(
    project_id: str, alert_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.PROJECT_WRITE)
    alert = _alert(request, project_id, alert_id)
    await commit(
        request,
        principal,
        event="spend_alert.deleted",
        delete=[("spend_alert", alert.id)],
        project=project,
        target_id=alert.id,
    )
    return {"id": alert.id, "object": "project.spend_alert.deleted", "deleted": True}
