"""How long a caller is willing to wait: the request's deadline, retries and fallbacks included.

A caller may ask for its own time-out, in seconds, with the ``x-switchyard-timeout`` header or
a top-level ``timeout`` field in the body (``extra_body`` in the SDKs); without either it gets
the operator's default. Either way it is capped by ``max_request_timeout_s``, since the deadline
also bounds how long Switchyard keeps the request's state.
"""

from __future__ import annotations

import math

from starlette.datastructures import Headers

from contracts.errors import ErrorCode, ErrorInfo
from services.ingress.errors import ApiError
from services.ingress.settings import IngressSettings

TIMEOUT_HEADER = "x-switchyard-timeout"


def requested_timeout_s(headers: Headers, payload: object, settings: IngressSettings) -> float:
    raw: object = headers.get(TIMEOUT_HEADER)
    param = TIMEOUT_HEADER
    if raw is None and isinstance(payload, dict):
        raw, param = payload.get("timeout"), "timeout"
    if raw is None:
        return settings.request_timeout_s
    try:
        # bool is an int to Python, but ``"timeout": true`` is no number of seconds
        if isinstance(raw, bool):
            raise ValueError
        seconds = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ApiError(
            ErrorInfo(
                code=ErrorCode.INVALID_REQUEST,
                message=f"'{param}' must be a positive number of seconds.",
                param=param,
            )
        )
    return min(seconds, settings.max_request_timeout_s)
