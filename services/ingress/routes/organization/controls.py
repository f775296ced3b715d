"""What a project may do: ``model_permissions`` (allow or deny lists), ``rate_limits`` per
model, a hard ``spend_limit`` per month, and ``data_retention``. Set by the organisation
(``api.policies.write``), read by the project.

Each is a record on the governance topic, read by every ingress replica; the request path
enforces them (``services.ingress.admission``): a forbidden model is a 403, a rate limit a 429,
a spend limit reached a 402, all before anything is published.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from contracts.catalogue import Catalogue, UnknownModel
from contracts.governance import (
    DataRetentionRecord,
    ModelAccess,
    ModelPermissionsRecord,
    ProjectRecord,
    RateLimitRecord,
    SpendLimitRecord,
)
from services.common.access import Permission
from services.ingress.admission import Admission
from services.ingress.deps import PrincipalDep
from services.ingress.errors import ApiError
from services.ingress.routes.organization._shared import (
    active,
    commit,
    invalid,
    json_object,
    not_found,
    page,
    project_for,
    view_of,
)

router = APIRouter()


def _admission(request: Request) -> Admission:
    admission: Admission = request.app.state.admission
    return admission


# Many enough for any allow-list a person writes; a bound on what one record carries.
_MAX_MODEL_IDS = 1000


def _canonical(request: Request, name: str, param: str) -> str:
    catalogue: Catalogue = request.app.state.catalogue
    try:
        return catalogue.resolve(name).card.canonical_id
    except UnknownModel as exc:
        raise ApiError(exc.error_info().model_copy(update={"param": param})) from exc


# -- model permissions --------------------------------------------------------------------------


def _permissions_json(access: ModelAccess | None) -> dict[str, Any]:
    # No permissions set means every model: an empty deny list says the same.
    shown = access or ModelAccess(mode="deny_list")
    return {"object": "project.model_permissions", "mode": shown.mode, "model_ids": shown.model_ids}


@router.get("/projects/{project_id}/model_permissions")
async def retrieve_model_permissions(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project_for(request, principal, project_id, Permission.PROJECT_READ)
    return _permissions_json(view_of(request).model_access(project_id))


@router.post("/projects/{project_id}/model_permissions")
async def update_model_permissions(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    """Model ids are stored as canonical ``provider/model`` ids: an alias or a bare id names
    the same model whichever way a request later spells it."""
    project = project_for(request, principal, project_id, Permission.POLICY_WRITE)
    body = await json_object(request)
    mode, names = body.get("mode"), body.get("model_ids")
    if mode not in ("allow_list", "deny_list"):
        raise invalid("'mode' must be 'allow_list' or 'deny_list'.", param="mode")
    if (
        not isinstance(names, list)
        or len(names) > _MAX_MODEL_IDS
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise invalid(
            f"'model_ids' must be a list of at most {_MAX_MODEL_IDS} model ids.", param="model_ids"
        )
    canonical: list[str] = []
    for index, name in enumerate(names):
        found = _canonical(request, name, f"model_ids[{index}]")
        if found not in canonical:
            canonical.append(found)
    access = ModelAccess(mode=mode, model_ids=canonical)
    await commit(
        request,
        principal,
        event="model_permissions.updated",
        put=[ModelPermissionsRecord(id=project_id, access=access)],
        project=project,
        target_id=project_id,
        details={"mode": mode, "models": len(canonical)},
    )
    return _permissions_json(access)


@router.delete("/projects/{project_id}/model_permissions")
async def delete_model_permissions(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.POLICY_WRITE)
    await commit(
        request,
        principal,
        event="model_permissions.deleted",
        delete=[("model_permissions", project_id)],
        project=project,
        target_id=project_id,
    )
    return {"object": "project.model_permissions.deleted", "deleted": True}


# -- rate limits --------------------------------------------------------------------------------

_LIMIT_FIELDS = ("max_requests_per_1_minute", "max_tokens_per_1_minute", "max_requests_per_1_day")
# The most any limit may be set to: far above what one gateway serves, and inside int64.
_MAX_LIMIT_VALUE = 10**12


def limit_id_of(canonical_id: str) -> str:
    """``rl-`` and the canonical id, its ``/`` spelt ``__`` so that the id fits in a path."""
    return "rl-" + canonical_id.replace("/", "__")


def _rate_limit_json(record: RateLimitRecord) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "object": "project.rate_limit",
        "id": limit_id_of(record.model),
        "model": record.model,
        # OpenAI's two required figures; 0 here means "not limited" (Switchyard's reading).
        "max_requests_per_1_minute": record.max_requests_per_1_minute or 0,
        "max_tokens_per_1_minute": record.max_tokens_per_1_minute or 0,
    }
    if record.max_requests_per_1_day is not None:
        shown["max_requests_per_1_day"] = record.max_requests_per_1_day
    return shown


def _model_of_limit(request: Request, limit_id: str) -> str:
    if not limit_id.startswith("rl-"):
        raise not_found("rate limit", limit_id)
    name = limit_id.removeprefix("rl-").replace("__", "/")
    catalogue: Catalogue = request.app.state.catalogue
    try:
        return catalogue.resolve(name).card.canonical_id
    except UnknownModel as exc:
        raise not_found("rate limit", limit_id) from exc


@router.get("/projects/{project_id}/rate_limits")
async def list_rate_limits(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    """The limits set. A model without one is not limited by the project (vendors' own
    limits and the providers' shared capacity still apply); ``POST`` to
    ``rl-<provider>__<model>`` sets one for any model of the catalogue."""
    project_for(request, principal, project_id, Permission.PROJECT_READ)
    records = sorted(
        (r for r in view_of(request).rate_limits.values() if r.project_id == project_id),
        key=lambda r: r.model,
    )
    return page(records, request, _rate_limit_json, lambda r: limit_id_of(r.model))


@router.post("/projects/{project_id}/rate_limits/{rate_limit_id}")
async def update_rate_limit(
    project_id: str, rate_limit_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    """OpenAI's fields; a field sent as null removes that limit (Switchyard's addition), one
    left out keeps its value."""
    project = project_for(request, principal, project_id, Permission.POLICY_WRITE)
    model = _model_of_limit(request, rate_limit_id)
    body = await json_object(request)
    record_id = f"{project_id}:{model}"
    record = view_of(request).rate_limits.get(record_id) or RateLimitRecord(
        id=record_id, project_id=project_id, model=model
    )
    changes: dict[str, int | None] = {}
    for field, value in body.items():
        if field not in _LIMIT_FIELDS:
            if field in (
                "max_images_per_1_minute",
                "max_audio_megabytes_per_1_minute",
                "batch_1_day_max_input_tokens",
            ):
                raise invalid(f"'{field}' is not enforced by Switchyard.", param=field)
            raise invalid(f"Unknown field '{field}'.", param=field)
        if value is not None and (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 1 <= value <= _MAX_LIMIT_VALUE
        ):
            raise invalid(
                f"'{field}' must be an integer from 1 to {_MAX_LIMIT_VALUE}, or null.", param=field
            )
        changes[field] = value
    active(project)
    record = record.model_copy(update=changes)
    await commit(
        request,
        principal,
        event="rate_limit.updated",
        put=[record],
        project=project,
        target_id=limit_id_of(model),
        details={"model": model, **changes},
    )
    return _rate_limit_json(record)


@router.delete("/projects/{project_id}/rate_limits/{rate_limit_id}")
async def delete_rate_limit(
    project_id: str, rate_limit_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    """Switchyard's addition: the model is no longer limited by the project."""
    project = project_for(request, principal, project_id, Permission.POLICY_WRITE)
    model = _model_of_limit(request, rate_limit_id)
    record_id = f"{project_id}:{model}"
    if record_id not in view_of(request).rate_limits:
        raise not_found("rate limit", rate_limit_id)
    await commit(
        request,
        principal,
        event="rate_limit.deleted",
        delete=[("rate_limit", record_id)],
        project=project,
        target_id=limit_id_of(model),
        details={"model": model},
    )
    return {"object": "project.rate_limit.deleted", "id": limit_id_of(model), "deleted": True}


# -- spend limit ------------------------------------------------------------------------------


def _spend_limit_json(record: SpendLimitRecord | None) -> dict[str, Any]:
    return {
        "object": "project.spend_limit",
        "threshold_amount": record.threshold_cents if record else 0,
        "currency": "USD",
        "interval": "month",
        "enforcement": {"status": "enforcing" if record else "inactive"},
    }


_MAX_CENTS = 9 * 10**11


def cents_in(body: dict[str, Any], field: str = "threshold_amount", *, minimum: int = 1) -> int:
    cents = body.get(field)
    # At most nine billion dollars: in nano-dollars, still inside the ledger's int64.
    if not isinstance(cents, int) or isinstance(cents, bool) or not minimum <= cents <= _MAX_CENTS:
        raise invalid(
            f"'{field}' must be a whole number of cents, at least {minimum}.", param=field
        )
    if body.get("currency", "USD") != "USD":
        raise invalid("'currency' must be 'USD'.", param="currency")
    if body.get("interval", "month") != "month":
        raise invalid("'interval' must be 'month'.", param="interval")
    return cents


@router.get("/projects/{project_id}/spend_limit")
async def retrieve_spend_limit(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project_for(request, principal, project_id, Permission.PROJECT_READ)
    return _spend_limit_json(view_of(request).spend_limits.get(project_id))


@router.post("/projects/{project_id}/spend_limit")
async def update_spend_limit(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    """A hard limit on what the project spends per calendar month (UTC), in cents. Requests
    hold their maximum cost against it at admission, as they do against prepaid credit."""
    project = project_for(request, principal, project_id, Permission.POLICY_WRITE)
    cents = cents_in(await json_object(request))
    active(project)
    record = SpendLimitRecord(id=project_id, threshold_cents=cents)
    await commit(
        request,
        principal,
        event="spend_limit.updated",
        put=[record],
        project=project,
        target_id=project_id,
        details={"threshold_cents": cents},
    )
    await _admission(request).prepare(project_id)
    return _spend_limit_json(record)


@router.delete("/projects/{project_id}/spend_limit")
async def delete_spend_limit(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.POLICY_WRITE)
    await commit(
        request,
        principal,
        event="spend_limit.deleted",
        delete=[("spend_limit", project_id)],
        project=project,
        target_id=project_id,
    )
    return {"object": "project.spend_limit.deleted", "deleted": True}


# -- data retention -------------------------------------------------------------------------

# OpenAI's retention types, read as Switchyard keeps data: ``none`` (no retention control)
# keeps request logs for ``retention_days``; the zero-retention types and the organisation's
# default (zero, here) keep nothing. The abuse-monitoring variants are OpenAI's own programmes.
_ZERO = ("organization_default", "zero_data_retention", "enhanced_zero_data_retention")
_MAX_RETENTION_DAYS = 3650


def _retention_json(project: ProjectRecord, record: DataRetentionRecord | None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "object": "project.data_retention",
        "type": record.type if record else "organization_default",
    }
    if record is not None and record.keeps_text:
        shown["retention_days"] = record.retention_days  # ours
    return shown


@router.get("/projects/{project_id}/data_retention")
async def retrieve_data_retention(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.PROJECT_READ)
    return _retention_json(project, view_of(request).data_retention.get(project_id))


@router.post("/projects/{project_id}/data_retention")
async def update_data_retention(
    project_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    project = project_for(request, principal, project_id, Permission.POLICY_WRITE)
    body = await json_object(request)
    kind = body.get("retention_type")
    days = body.get("retention_days", 30)
    if kind not in _ZERO and kind != "none":
        raise invalid(
            "'retention_type' must be one of: none, zero_data_retention, "
            "enhanced_zero_data_retention, organization_default.",
            param="retention_type",
        )
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= _MAX_RETENTION_DAYS:
        raise invalid(
            f"'retention_days' must be from 1 to {_MAX_RETENTION_DAYS}.", param="retention_days"
        )
    active(project)
    record = DataRetentionRecord(id=project_id, type=kind, retention_days=days)
    await commit(
        request,
        principal,
        event="data_retention.updated",
        put=[record],
        project=project,
        target_id=project_id,
        details={"type": str(kind), "retention_days": days},
    )
    return _retention_json(project, record)
