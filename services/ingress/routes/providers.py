"""``GET /v1/providers`` (ours, admin only): each provider's replicas, capacity and circuits,
and each recently used model's state, error rate and latency percentiles, as every replica
records them in Redis. ``switchyard providers`` prints the same.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from contracts.errors import ErrorCode, ErrorInfo
from contracts.topics import PROVIDERS
from services.common.capacity import Capacity
from services.common.circuits import Circuits, CircuitState, CircuitView, provider_circuit
from services.common.provider_registry import replicas
from services.common.provider_stats import StatsView, read_stats
from services.ingress.deps import GatewayDep, ModelNamesDep, PrincipalDep
from services.ingress.errors import ApiError

router = APIRouter()

# The window the error rates and percentiles cover.
STATS_MINUTES = 5


@router.get("/v1/providers")
async def list_providers(
    request: Request, gateway: GatewayDep, names: ModelNamesDep, principal: PrincipalDep
) -> dict[str, Any]:
    if not principal.is_admin:
        raise ApiError(
            ErrorInfo(code=ErrorCode.PERMISSION_DENIED, message="Provider health is for admins.")
        )
    wanted = request.query_params.get("provider")
    if wanted is not None and wanted not in PROVIDERS:
        raise ApiError(
            ErrorInfo(
                code=ErrorCode.INVALID_REQUEST,
                message=f"Unknown provider '{wanted}'; known: {', '.join(PROVIDERS)}.",
                param="provider",
            )
        )
    config = names.config()
    redis = gateway.redis
    circuits = Circuits(redis, config.circuit_policy)
    capacity = Capacity(redis, config.account_limits)
    stats = await read_stats(redis, minutes=STATS_MINUTES)
    not_closed = await circuits.views()
    data = []
    for provider in PROVIDERS if wanted is None else (wanted,):
        own = (await circuits.views([provider_circuit(provider)]))[provider_circuit(provider)]
        models = sorted(
            {k for k in stats if k.startswith(f"{provider}/")}
            | {k for k in not_closed if k.startswith(f"{provider}/") and not k.endswith("/*")}
        )
        views = await circuits.views(models) if models else {}
        served = await replicas(redis, provider)
        load = await capacity.view(provider)
        limits = load.limits
        data.append(
            {
                "id": provider,
                "object": "provider",
                "replicas": [
                    {
                        "instance_id": r.instance_id,
                        "vendor_host": r.vendor_host,
                        "simulated": r.simulated,
                        "seen_ms": r.seen_ms,
                    }
                    for r in served
                ],
                "circuit": _circuit(own),
                "capacity": {
                    "concurrency_limit": round(load.limit, 2),
                    "max_concurrency": limits.ceiling,
                    "in_flight": load.in_flight,
                    "rpm": limits.rpm,
                    "rpm_used": load.rpm_used,
                    "tpm": limits.tpm,
                    "tpm_used": load.tpm_used,
                    "batch_share": limits.batch_share,
                    "paused_until_ms": load.paused_until_ms,
                },
                "open_circuits": [m for m in models if views[m].state is not CircuitState.CLOSED],
                "models": [_model(m, views[m], stats.get(m)) for m in models],
            }
        )
    return {"object": "list", "window_minutes": STATS_MINUTES, "data": data}


def _circuit(view: CircuitView) -> dict[str, Any]:
    return {
        "state": view.state.value,
        "recent_failures": view.recent_failures,
        "opened_at_ms": view.opened_at_ms,
        "retry_at_ms": view.retry_at_ms,
    }


def _model(key: str, view: CircuitView, stats: StatsView | None) -> dict[str, Any]:
    return {
        "id": key,
        "circuit": _circuit(view),
        "requests": stats.requests if stats else 0,
        "errors": stats.errors if stats else 0,
        "error_rate": round(stats.error_rate, 4) if stats else 0.0,
        "latency_ms": {
            "p50": stats.p50_ms if stats else None,
            "p95": stats.p95_ms if stats else None,
            "p99": stats.p99_ms if stats else None,
        },
    }
