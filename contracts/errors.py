"""Error codes shared by every service.

An error is classified once, where it happens (ingress for the caller's mistakes, the provider
adapter for a vendor's answer), into a code from this closed set. The code decides the HTTP status
the caller sees, whether the worker may retry, and what goes into ``usage_events.error_class``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ErrorCode(StrEnum):
    # the caller's fault
    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    PERMISSION_DENIED = "permission_denied"
    MODEL_NOT_FOUND = "model_not_found"
    NOT_FOUND = "not_found"  # an admin resource (project, key...) that does not exist
    PAYLOAD_TOO_LARGE = "payload_too_large"
    CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
    # A vendor refused the content on policy grounds; another vendor's policy may differ.
    CONTENT_POLICY = "content_policy"
    RATE_LIMITED = "rate_limited"
    # The project's prepaid credit cannot cover the request, or its spend limit is reached:
    # OpenAI's code for running out of quota, with HTTP's Payment Required.
    INSUFFICIENT_QUOTA = "insufficient_quota"
    CANCELLED = "cancelled"  # the caller went away (closed its stream) before the answer ended
    # the vendor's fault
    VENDOR_RATE_LIMITED = "vendor_rate_limited"
    VENDOR_OVERLOADED = "vendor_overloaded"
    VENDOR_ERROR = "vendor_error"
    VENDOR_TIMEOUT = "vendor_timeout"
    VENDOR_UNREACHABLE = "vendor_unreachable"
    VENDOR_BAD_RESPONSE = "vendor_bad_response"
    VENDOR_AUTH = "vendor_auth"
    # ours
    DEADLINE_EXCEEDED = "deadline_exceeded"
    # Switchyard's own parts (Kafka, Redis) are down: never blamed on a vendor
    UNAVAILABLE = "unavailable"
    NO_ROUTE = "no_route"
    INTERNAL = "internal"

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self]

    @property
    def openai_type(self) -> str:
        """The ``error.type`` OpenAI's SDK and users expect for this status."""
        return _OPENAI_TYPE.get(self.http_status, "api_error")


_HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.CONTEXT_LENGTH_EXCEEDED: 400,
    ErrorCode.CONTENT_POLICY: 400,
    ErrorCode.AUTHENTICATION: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.MODEL_NOT_FOUND: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INSUFFICIENT_QUOTA: 402,
    # nginx's "client closed request": nobody reads it, but logs and usage rows say what happened.
    ErrorCode.CANCELLED: 499,
    ErrorCode.VENDOR_RATE_LIMITED: 429,
    ErrorCode.VENDOR_ERROR: 502,
    ErrorCode.VENDOR_BAD_RESPONSE: 502,
    ErrorCode.VENDOR_AUTH: 502,
    ErrorCode.VENDOR_OVERLOADED: 503,
    ErrorCode.VENDOR_UNREACHABLE: 503,
    ErrorCode.NO_ROUTE: 503,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.VENDOR_TIMEOUT: 504,
    ErrorCode.DEADLINE_EXCEEDED: 504,
    ErrorCode.INTERNAL: 500,
}

_OPENAI_TYPE: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class ErrorInfo(BaseModel):
    """An error as it travels between services and into the caller's error body."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: ErrorCode
    message: str
    retryable: bool = False
    retry_after_s: float | None = None
    vendor_status: int | None = None
    param: str | None = None
