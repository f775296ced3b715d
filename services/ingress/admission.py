"""Admission: what a request must pass, after its key and before anything is published.

In order, each refusal in OpenAI's error shape and each leaving an audit entry:

1. **The key may call models** (``api.model.request``): admin API keys and analysts' or
   auditors' keys may not (403).
2. **Rate limits** of the project on each model the request names (``rate_limits``): requests
   and tokens per minute, requests per day, counted in Redis across every replica
   (``services.common.rate_limits``). Tokens count as OpenAI counts them: the prompt (from the
   tokenizer) plus the most the answer may take. Over a limit: 429 with ``retry-after`` and
   OpenAI's ``x-ratelimit-*`` headers. A model the request did not name (a route's, ``auto``'s
   or a fallback's choice) is counted by the worker, as it is about to call it
   (``services.workers.dispatch``): over its limit, the plan moves on, or ends in a 429.
3. **Money**: a project with prepaid credit, a spend limit or a spend alert places a hold for the
   request's maximum cost (``services.common.credit``): prompt tokens times the input price
   plus ``max_tokens`` (or the model's maximum output) times the output price, at the dearest
   model the request may end on. No credit to cover it, or the month's limit reached: 402
   ``insufficient_quota``, before any vendor call. Metering settles each attempt at its exact
   cost, and the hold goes once the request has ended (``close``) and every attempt is settled.

Redis down: rate limits let requests through (they protect capacity, and the vendors' own limits
still stand), but money does not: a project that holds credit gets a 503 until Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NoReturn

import redis.asyncio as aioredis
from starlette.requests import Request

from contracts._base import now_ms
from contracts.audit import AuditEvent, DenialReason
from contracts.catalogue import Catalogue, ModelCard, UnknownModel
from contracts.chat import ChatRequest, Usage
from contracts.errors import ErrorCode, ErrorInfo
from contracts.governance import ModelAccess, ModelRateLimit
from services.common.access import KeyKind, Permission, Principal
from services.common.audit import AuditTrail
from services.common.credit import (
    CreditLedger,
    HoldOutcome,
    HoldResult,
    LedgerSnapshot,
    month_of,
    nanos_to_usd,
    usd_to_nanos_ceil,
)
from services.common.governance import GovernanceView
from services.common.pricing import usage_cost
from services.common.rate_limits import RateDecision, RateLimit, RateLimiter
from services.common.redis_client import REDIS_DOWN
from services.ingress.auditing import actor_of
from services.ingress.errors import ApiError
from services.ingress.model_names import ModelNames
from services.ingress.spend_alerts import SpendAlerts

log = logging.getLogger(__name__)

_PER_MILLION = Decimal(1_000_000)
# When neither the request nor the card bounds the answer: a long answer, priced as such.
_DEFAULT_MAX_OUTPUT = 16_384
# A hold outlives its request's deadline by this much, then lapses on its own: the safety net for
# a request whose ingress died before it could close the hold.
_HOLD_GRACE_S = 120
# How long a request waits for metering to build a ledger (the project's first use, or Redis
# lost it), before a 503: a rebuild reads ClickHouse, and its first query after a start is slow.
_REBUILD_WAIT_S = 10.0
_REBUILD_POLL_S = 0.1


@dataclass(slots=True)
class Ticket:
    """What admission placed for one request: the hold to close when it ends, and the rate
    limit headers to send."""

    request_id: str
    project: str | None = None  # set when a hold was placed
    headers: dict[str, str] = field(default_factory=dict)
    # The project keeps its request logs this long (its ``data_retention``); None: nothing kept.
    retention_days: int | None = None
    # The project's rate limits by model, and the models counted here (the named ones): the
    # worker applies the others' limits to whatever route, ``auto`` or a fallback chose.
    rate_limits: dict[str, ModelRateLimit] = field(default_factory=dict)
    rate_counted: list[str] = field(default_factory=list)


class Admission:
    def __init__(
        self,
        redis: aioredis.Redis,
        view: GovernanceView,
        names: ModelNames,
        trail: AuditTrail,
        alerts: SpendAlerts,
    ) -> None:
        self.credit = CreditLedger(redis)
        self.limits = RateLimiter(redis)
        self._view = view
        self._names = names
        self._trail = trail
        self._alerts = alerts

    @property
    def catalogue(self) -> Catalogue:
        return self._names.catalogue

    async def admit(
        self,
        principal: Principal,
        *,
        request_id: str,
        chat: ChatRequest,
        requested: list[str],
        timeout_s: float,
        prompt_tokens: Callable[[], int],
    ) -> Ticket:
        """``prompt_tokens`` counts the prompt with the tokenizer; called only when a limit or
        a hold needs the figure."""
        ticket = Ticket(request_id=request_id)
        if principal.kind is KeyKind.ADMIN_KEY or not principal.can(
            Permission.MODEL_REQUEST, principal.project_id
        ):
            self.deny(
                principal,
                ErrorInfo(
                    code=ErrorCode.PERMISSION_DENIED,
                    message=(
                        "This key may not call models: use a project key of a member or owner "
                        "of the project."
                    ),
                ),
                reason=DenialReason.KEY_NOT_PERMITTED,
            )
        project = principal.project_id
        if project is None:
            return ticket  # the bootstrap key: the organisation's own traffic
        retention = self._view.data_retention.get(project)
        if retention is not None and retention.keeps_text:
            ticket.retention_days = retention.retention_days
        max_output = chat.sampling.max_output_tokens
        counted = functools.cache(prompt_tokens)  # counted once, and only if needed
        ticket.rate_limits = {
            r.model: ModelRateLimit(
                requests_per_minute=r.max_requests_per_1_minute,
                tokens_per_minute=r.max_tokens_per_1_minute,
                requests_per_day=r.max_requests_per_1_day,
            )
            for r in self._view.rate_limits.values()
            if r.project_id == project
        }
        for card in self._named_cards(requested):
            await self._rate_limit(principal, project, card, counted, max_output, ticket)
            ticket.rate_counted.append(card.canonical_id)
        await self._hold(principal, project, requested, counted, max_output, timeout_s, ticket)
        return ticket

    async def close(
        self, ticket: Ticket, attempts: int, *, model: str | None = None, usage: Usage | None = None
    ) -> None:
        """The request ended after ``attempts`` vendor attempts; its hold goes once metering has
        settled each of them. Until then, when one attempt answered with ``usage`` of ``model``,
        only that answer's cost stays held (rounded up as the ledger counts), not the maximum."""
        if ticket.project is None:
            return
        cost = None
        if attempts == 1 and usage is not None and model is not None:
            exact = usage_cost(usage, self.catalogue.get(model))
            cost = usd_to_nanos_ceil(exact) if exact is not None else None
        try:
            await self.credit.close(ticket.project, ticket.request_id, attempts, cost_nanos=cost)
        except REDIS_DOWN:
            log.warning("could not close the hold of %s; it lapses on its own", ticket.request_id)

    def deny(
        self,
        principal: Principal | None,
        info: ErrorInfo,
        headers: dict[str, str] | None = None,
        *,
        request: Request | None = None,
        reason: DenialReason | None = None,
    ) -> NoReturn:
        """Refuse the request: an audit entry (never the prompt), then the error."""
        reason = reason or _REASONS.get(info.code, DenialReason.MODEL_NOT_ALLOWED)
        self._trail.note(
            AuditEvent(
                type="request.denied",
                actor=actor_of(principal, self._view, request),
                project_id=principal.project_id if principal else None,
                project_name=self._project_name(principal),
                outcome="denied",
                error_code=info.code.value,
                details={"reason": reason.value, "message": info.message},
            )
        )
        raise ApiError(info, headers=headers)

    # -- rate limits --------------------------------------------------------------------------

    def _named_cards(self, requested: list[str]) -> list[ModelCard]:
        cards: list[ModelCard] = []
        config = self._names.config()
        for name in requested:
            if name in config.routes:
                continue
            try:
                card = self.catalogue.resolve(name).card
            except UnknownModel:
                continue  # a policy name, or refused before admission
            if card not in cards:
                cards.append(card)
        return cards

    async def _rate_limit(
        self,
        principal: Principal,
        project: str,
        card: ModelCard,
        prompt_tokens: Callable[[], int],
        max_output: int | None,
        ticket: Ticket,
    ) -> None:
        record = self._view.rate_limit(project, card.canonical_id)
        if record is None:
            return
        limit = RateLimit(
            requests_per_minute=record.max_requests_per_1_minute,
            tokens_per_minute=record.max_tokens_per_1_minute,
            requests_per_day=record.max_requests_per_1_day,
        )
        tokens = prompt_tokens() + _output_bound(max_output, card)
        try:
            decision = await self.limits.admit(
                project, card.canonical_id, tokens=tokens, limit=limit
            )
        except REDIS_DOWN:
            log.warning("rate limits of %s not checked: Redis is down", project)
            return
        headers = _rate_headers(decision)
        ticket.headers.update(headers)
        if decision.allowed:
            return
        if decision.retry_after_s is None:
            message = (
                f"This request needs {tokens} tokens (prompt and maximum answer), more than the "
                f"project's limit of {record.max_tokens_per_1_minute} tokens per minute on "
                f"'{card.canonical_id}'. Lower max_tokens or the prompt."
            )
        else:
            message = (
                f"Rate limit reached for '{card.canonical_id}' in project '{project}' on "
                f"{decision.limited_by}; try again in {decision.retry_after_s:.1f} s."
            )
        self.deny(
            principal,
            ErrorInfo(
                code=ErrorCode.RATE_LIMITED,
                message=message,
                retryable=decision.retry_after_s is not None,
                retry_after_s=decision.retry_after_s,
            ),
            headers,
        )

    # -- money ----------------------------------------------------------------------------------

    def max_cost_usd(
        self,
        requested: list[str],
        access: ModelAccess | None,
        prompt_tokens: int,
        max_output: int | None,
    ) -> Decimal:
        """The most the request can cost: at the dearest model it may end on."""
        cards: dict[str, ModelCard] = {}
        for name in requested:
            for card in self._names.reachable(name, access):
                cards[card.canonical_id] = card
        worst = Decimal(0)
        for card in cards.values():
            prices = card.prices
            output = _output_bound(max_output, card)
            cost = (
                prompt_tokens * (prices.input or Decimal(0))
                + output * (prices.output or Decimal(0))
            ) / _PER_MILLION
            worst = max(worst, cost)
        return worst

    async def _hold(
        self,
        principal: Principal,
        project: str,
        requested: list[str],
        prompt_tokens: Callable[[], int],
        max_output: int | None,
        timeout_s: float,
        ticket: Ticket,
    ) -> None:
        granted = self._view.granted_usd(project)
        limit = self._view.spend_limits.get(project)
        if granted is None and limit is None and not self._alerts.watches(project):
            return
        amount = usd_to_nanos_ceil(
            self.max_cost_usd(requested, principal.model_access, prompt_tokens(), max_output)
        )
        month = month_of(now_ms())
        expires_at_ms = now_ms() + int((timeout_s + _HOLD_GRACE_S) * 1000)
        waited_until = time.monotonic() + _REBUILD_WAIT_S
        while True:
            try:
                result = await self.credit.hold(
                    project,
                    ticket.request_id,
                    amount,
                    granted_nanos=usd_to_nanos_ceil(granted) if granted is not None else None,
                    month_limit_nanos=limit.threshold_cents * 10_000_000 if limit else None,
                    month=month,
                    expires_at_ms=expires_at_ms,
                )
                if result.outcome is not HoldOutcome.NOT_READY:
                    break
                # Redis lost the ledger (restarted, wiped): metering rebuilds it from ClickHouse.
                await self.credit.request_rebuild(project)
            except REDIS_DOWN as exc:
                raise ApiError(_ledger_unavailable()) from exc
            if time.monotonic() > waited_until:
                raise ApiError(_ledger_unavailable())
            await asyncio.sleep(_REBUILD_POLL_S)
        if result.outcome is HoldOutcome.HELD:
            ticket.project = project
            self._alerts.observe(project, result.month_spent_nanos, month)
            return
        self.deny(principal, _quota_error(project, result, amount))

    async def prepare(self, project: str) -> None:
        """Have metering build the project's ledger now (a grant, a limit or an alert was just
        set), so that its next request finds it ready."""
        with contextlib.suppress(*REDIS_DOWN):  # its first request asks again
            await self.credit.request_rebuild(project)

    async def snapshot(self, project: str) -> LedgerSnapshot:
        """The project's ledger for this month, rebuilt first if Redis lost it; raises an
        ``ApiError`` (503) when that cannot be had in time."""
        month = month_of(now_ms())
        waited_until = time.monotonic() + _REBUILD_WAIT_S
        while True:
            try:
                snapshot = await self.credit.snapshot(project, month)
                if snapshot.ready:
                    return snapshot
                await self.credit.request_rebuild(project)
            except REDIS_DOWN as exc:
                raise ApiError(_ledger_unavailable()) from exc
            if time.monotonic() > waited_until:
                raise ApiError(_ledger_unavailable())
            await asyncio.sleep(_REBUILD_POLL_S)

    def _project_name(self, principal: Principal | None) -> str | None:
        if principal is None or principal.project_id is None:
            return None
        project = self._view.projects.get(principal.project_id)
        return project.name if project else None


def _output_bound(max_output: int | None, card: ModelCard) -> int:
    """The most the answer may take: what the caller allows, within what the model can give
    (a ``max_tokens`` of a billion must not make a hold nobody can afford, or overflow)."""
    ceiling = card.max_output_tokens or _DEFAULT_MAX_OUTPUT
    return min(max_output, ceiling) if max_output else ceiling


_REASONS = {
    ErrorCode.AUTHENTICATION: DenialReason.INVALID_API_KEY,
    ErrorCode.PERMISSION_DENIED: DenialReason.MODEL_NOT_ALLOWED,
    ErrorCode.RATE_LIMITED: DenialReason.RATE_LIMITED,
    ErrorCode.INSUFFICIENT_QUOTA: DenialReason.INSUFFICIENT_CREDIT,
}


def _quota_error(project: str, result: HoldResult, amount_nanos: int) -> ErrorInfo:
    needed = nanos_to_usd(amount_nanos)
    if result.outcome is HoldOutcome.OVER_SPEND_LIMIT:
        message = (
            f"Project '{project}' has reached its monthly spend limit: this request may cost up "
            f"to ${needed:f}. Raise the limit, or lower max_tokens."
        )
    else:
        available = nanos_to_usd(max(result.available_nanos or 0, 0))
        message = (
            f"You exceeded your current quota: project '{project}' has ${available:f} of "
            f"prepaid credit available, and this request may cost up to ${needed:f}. Add "
            "credit, or lower max_tokens."
        )
    return ErrorInfo(code=ErrorCode.INSUFFICIENT_QUOTA, message=message)


def _ledger_unavailable() -> ErrorInfo:
    return ErrorInfo(
        code=ErrorCode.UNAVAILABLE,
        message="The project's credit cannot be checked right now; try again shortly.",
        retryable=True,
        retry_after_s=1.0,
    )


def _rate_headers(decision: RateDecision) -> dict[str, str]:
    """OpenAI's ``x-ratelimit-*`` headers, for the limits that are set."""
    headers: dict[str, str] = {}
    for kind, limit, remaining, reset in (
        (
            "requests",
            decision.limit_requests,
            decision.remaining_requests,
            decision.reset_requests_s,
        ),
        ("tokens", decision.limit_tokens, decision.remaining_tokens, decision.reset_tokens_s),
    ):
        if limit is None:
            continue
        headers[f"x-ratelimit-limit-{kind}"] = str(limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(max(remaining or 0, 0))
        headers[f"x-ratelimit-reset-{kind}"] = f"{math.ceil((reset or 0) * 1000)}ms"
    return headers
