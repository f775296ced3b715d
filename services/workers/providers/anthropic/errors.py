"""Classification of the errors the Messages API answers with."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping

from contracts.errors import ErrorCode, ErrorInfo
from services.workers.providers._decoding import parse_wire
from services.workers.providers.anthropic.response import ErrorObjectWire, Lenient
from services.workers.providers.base import VendorProtocolError, excerpt, status_message
from services.workers.providers.retry_after import retry_after_seconds

# error.type -> (code, retryable). Authentication, permission and billing failures concern the
# key Switchyard holds, so they are ours to fix (VENDOR_AUTH), never the caller's.
_ERROR_TYPES: dict[str, tuple[ErrorCode, bool]] = {
    "invalid_request_error": (ErrorCode.INVALID_REQUEST, False),
    "authentication_error": (ErrorCode.VENDOR_AUTH, False),
    "permission_error": (ErrorCode.VENDOR_AUTH, False),
    "billing_error": (ErrorCode.VENDOR_AUTH, False),
    "not_found_error": (ErrorCode.VENDOR_ERROR, False),  # our catalogue names a missing model
    "request_too_large": (ErrorCode.PAYLOAD_TOO_LARGE, False),
    "rate_limit_error": (ErrorCode.VENDOR_RATE_LIMITED, True),
    "api_error": (ErrorCode.VENDOR_ERROR, True),
    "timeout_error": (ErrorCode.VENDOR_TIMEOUT, True),
    "overloaded_error": (ErrorCode.VENDOR_OVERLOADED, True),
}
# For bodies without a readable type (a proxy's HTML page, an empty body).
_ERROR_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_CONTEXT_LENGTH = re.compile(
    r"prompt is too long|exceeds? (the )?context|context (window|length|limit)", re.IGNORECASE
)


class _ErrorResponse(Lenient):
    error: ErrorObjectWire


def classify_anthropic_error(status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
    """Classify a non-2xx Messages answer, by ``error.type`` first, the status second."""
    error: ErrorObjectWire | None = None
    with contextlib.suppress(VendorProtocolError):  # unreadable bodies fall back to the status
        error = parse_wire(_ErrorResponse, body, what="error body", logged=False).error
    message = (error.message if error else None) or status_message(status, body)
    info = classify_error_type(error.type if error else None, message, status=status)
    if info.retryable:
        info = info.model_copy(update={"retry_after_s": retry_after_seconds(headers)})
    return info


def classify_error_type(error_type: str | None, message: str, *, status: int | None) -> ErrorInfo:
    if error_type not in _ERROR_TYPES and status is not None:
        error_type = _ERROR_TYPE_BY_STATUS.get(status)
    if error_type in _ERROR_TYPES:
        code, retryable = _ERROR_TYPES[error_type]
    elif status in (408, 409):  # request timeout, lock conflict: worth another try
        code, retryable = ErrorCode.VENDOR_ERROR, True
    elif status is not None and status < 500:
        code, retryable = ErrorCode.VENDOR_ERROR, False
    else:  # an unknown 5xx, or an unknown error type inside a stream
        code, retryable = ErrorCode.VENDOR_ERROR, True
    if code is ErrorCode.INVALID_REQUEST and _CONTEXT_LENGTH.search(message):
        code = ErrorCode.CONTEXT_LENGTH_EXCEEDED
    return ErrorInfo(code=code, message=excerpt(message), retryable=retryable, vendor_status=status)
