"""Spend alerts: a signed webhook, once per month in which a project's spend reaches an alert's
threshold, and an audit entry ``spend_alert.triggered``.

Checked at admission, where the project's settled spend for the month comes back with the
request's hold (``services.common.credit``): the first request after the threshold is crossed
fires it. One replica fires: the first to set ``sy:alert:{<alert>}:<month>`` in Redis. Redis
losing that mark may send an alert twice in a month; receivers dedupe by ``id`` (the alert and
the month), which is the same in both.

The request is ``POST <url>`` with a JSON body and ``x-switchyard-signature: t=<unix time>,
v1=<hex HMAC-SHA256 of "<t>.<body>" under the alert's signing secret>``, the scheme Stripe's
webhooks made familiar: the time inside the signature lets a receiver refuse replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import time

import httpx
import orjson
import redis.asyncio as aioredis

from contracts.audit import AuditActor, AuditEvent
from contracts.governance import SpendAlertRecord
from services.common.audit import AuditTrail
from services.common.credit import nanos_to_usd
from services.common.governance import GovernanceView
from services.common.redis_client import REDIS_DOWN

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-switchyard-signature"
_NANOS_PER_CENT = 10_000_000
_MARK_TTL_S = 40 * 24 * 3600  # outlives the month it marks
_ATTEMPTS = 4
_FIRST_BACKOFF_S = 0.5
_TIMEOUT_S = 10.0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class SpendAlerts:
    def __init__(
        self,
        redis: aioredis.Redis,
        view: GovernanceView,
        trail: AuditTrail,
        *,
        allow_private: bool = False,
    ) -> None:
        """``allow_private``: webhooks may go to loopback and private addresses (a local stack,
        the tests). Off in production: a project owner must not probe the internal network."""
        self._redis = redis
        self._allow_private = allow_private
        self._view = view
        self._trail = trail
        self._fired: set[tuple[str, str]] = set()  # (alert, month) this replica saw fired
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def watches(self, project: str) -> bool:
        return any(a.project_id == project for a in self._view.spend_alerts.values())

    def observe(self, project: str, month_spent_nanos: int, month: str) -> None:
        for alert in list(self._view.spend_alerts.values()):
            if alert.project_id != project or (alert.id, month) in self._fired:
                continue
            if month_spent_nanos < alert.threshold_cents * _NANOS_PER_CENT:
                continue
            self._fired.add((alert.id, month))
            task = asyncio.create_task(self._fire(alert, month, month_spent_nanos))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()

    async def _fire(self, alert: SpendAlertRecord, month: str, spent_nanos: int) -> None:
        try:
            first = await self._redis.set(
                f"sy:alert:{{{alert.project_id}}}:{alert.id}:{month}", b"1", nx=True, ex=_MARK_TTL_S
            )
        except REDIS_DOWN:
            self._fired.discard((alert.id, month))  # try again on a later request
            return
        if not first:
            return
        event_id = f"{alert.id}:{month}"
        body = orjson.dumps(
            {
                "object": "event",
                "id": event_id,
                "type": "spend_alert.triggered",
                "created_at": int(time.time()),
                "data": {
                    "alert_id": alert.id,
                    "project_id": alert.project_id,
                    "threshold_amount": alert.threshold_cents,
                    "currency": "USD",
                    "interval": "month",
                    "month": month,
                    "month_spend": f"{nanos_to_usd(spent_nanos):f}",
                },
            }
        )
        delivered = await self._deliver(alert, body)
        project = self._view.projects.get(alert.project_id)
        entry = AuditEvent(
            type="spend_alert.triggered",
            actor=AuditActor(type="system"),
            project_id=alert.project_id,
            project_name=project.name if project else None,
            target_id=alert.id,
            outcome="success" if delivered else "failure",
            details={
                "month": month,
                "threshold_cents": alert.threshold_cents,
                "month_spend_usd": f"{nanos_to_usd(spent_nanos):f}",
                "delivered": delivered,
            },
        )
        try:
            await self._trail.record(entry)
        except Exception:
            log.exception("audit entry for spend alert %s could not be written", alert.id)

    async def _deliver(self, alert: SpendAlertRecord, body: bytes) -> bool:
        """Whether the receiver took it. What it answered is not kept: the audit entry is
        readable by the project, and a status code would tell it about the far side."""
        if not self._allow_private and not await _public(alert.webhook_url):
            log.warning("spend alert %s: its webhook's host is not public; not called", alert.id)
            return False
        if self._client is None:
            # No redirects: a public URL must not bounce the call to an internal one.
            self._client = httpx.AsyncClient(timeout=_TIMEOUT_S, follow_redirects=False)
        for attempt in range(_ATTEMPTS):
            timestamp = int(time.time())
            try:
                response = await self._client.post(
                    alert.webhook_url,
                    content=body,
                    headers={
                        "content-type": "application/json",
                        SIGNATURE_HEADER: signature(alert.signing_secret, timestamp, body),
                    },
                )
                if response.is_success:
                    return True
            except httpx.HTTPError as exc:
                log.warning("spend alert %s webhook failed: %s", alert.id, type(exc).__name__)
            await asyncio.sleep(_FIRST_BACKOFF_S * 2**attempt)
        return False


async def _public(url: str) -> bool:
    """Whether every address the URL's host resolves to is a public one. (A host that resolves
    differently a moment later could still slip through; an egress proxy closes that gap.)"""
    host = httpx.URL(url).host
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in found}
    return bool(addresses) and all(ipaddress.ip_address(a).is_global for a in addresses)
