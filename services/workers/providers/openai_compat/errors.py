"""Classification of the errors OpenAI-compatible vendors answer with."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from contracts.errors import ErrorCode, ErrorInfo
from services.workers.providers._decoding import load_json
from services.workers.providers.base import VendorProtocolError, excerpt, status_message
from services.workers.providers.openai_compat.response import ErrorBodyWire
from services.workers.providers.retry_after import retry_after_seconds

_CONTEXT_LENGTH = re.compile(
    r"context[_ ]length|context window|maximum context|prompt is too long|too many (input )?tokens",
    re.IGNORECASE,
)

# OpenAI's image and moderation refusals, Azure's content management policy.
_CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "content_filter"})


def classify_openai_error(status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
    """Classify a non-2xx answer of an OpenAI-compatible vendor.

    Authentication, permission and billing failures are ``VENDOR_AUTH``: the key is ours, so
    it is our configuration at fault, never the caller's.
    """
    error = _error_body(body)
    message = excerpt(_message_of(error) or status_message(status, body))
    code = str(error.code) if error and error.code is not None else ""

    def info(code_: ErrorCode, retryable: bool, *, param: str | None = None) -> ErrorInfo:
        retry_after = retry_after_seconds(headers) if retryable else None
        return ErrorInfo(
            code=code_,
            message=message,
            retryable=retryable,
            retry_after_s=retry_after,
            vendor_status=status,
            param=param,
        )

    if status in (400, 422):  # Mistral validates with 422
        if code == "context_length_exceeded" or _CONTEXT_LENGTH.search(message):
            return info(ErrorCode.CONTEXT_LENGTH_EXCEEDED, False)
        if code in _CONTENT_POLICY_CODES:
            return info(ErrorCode.CONTENT_POLICY, False)
        return info(ErrorCode.INVALID_REQUEST, False, param=error.param if error else None)
    if status in (401, 402, 403):  # 402: DeepSeek's "Insufficient Balance"
        return info(ErrorCode.VENDOR_AUTH, False)
    if status == 404:
        # The vendor does not know the model: our catalogue is wrong, not the caller's request.
        return info(ErrorCode.VENDOR_ERROR, False)
    if status == 413:
        return info(ErrorCode.PAYLOAD_TOO_LARGE, False)
    if status == 429:
        # An exhausted quota will not refill by waiting; the worker should move on.
        quota = code == "insufficient_quota" or (
            error is not None and error.type == "insufficient_quota"
        )
        return info(ErrorCode.VENDOR_RATE_LIMITED, not quota)
    if status in (408, 409):
        return info(ErrorCode.VENDOR_ERROR, True)
    if status in (503, 529):
        return info(ErrorCode.VENDOR_OVERLOADED, True)
    if status >= 500:
        return info(ErrorCode.VENDOR_ERROR, True)
    return info(ErrorCode.VENDOR_ERROR, False)


def classify_stream_error(error: ErrorBodyWire | None) -> ErrorInfo:
    message = excerpt(_message_of(error) or "The vendor reported an error mid-stream.")
    kind = f"{error.type or ''} {error.code or ''}" if error else ""
    if "rate_limit" in kind:
        return ErrorInfo(code=ErrorCode.VENDOR_RATE_LIMITED, message=message, retryable=True)
    if "invalid_request" in kind:
        code = (
            ErrorCode.CONTEXT_LENGTH_EXCEEDED
            if _CONTEXT_LENGTH.search(message) or "context_length" in kind
            else ErrorCode.INVALID_REQUEST
        )
        return ErrorInfo(code=code, message=message, retryable=False)
    if "overload" in kind:
        return ErrorInfo(code=ErrorCode.VENDOR_OVERLOADED, message=message, retryable=True)
    return ErrorInfo(code=ErrorCode.VENDOR_ERROR, message=message, retryable=True)


def _error_body(body: bytes) -> ErrorBodyWire | None:
    """The error object from the shapes the copies use: ``{"error": {...}}`` (OpenAI),
    ``[{"error": {...}}]`` (Gemini), ``{"message": ..., "type": ...}`` (Mistral, others)."""
    try:
        value: Any = load_json(body, what="error body", logged=False)
    except VendorProtocolError:
        return None
    if isinstance(value, list) and value:
        value = value[0]
    if not isinstance(value, dict):
        return None
    inner = value.get("error")
    if isinstance(inner, dict):
        value = inner
    elif isinstance(inner, str):
        value = {"message": inner}
    elif "message" not in value and "detail" in value:
        value = {"message": value["detail"]}
    try:
        return ErrorBodyWire.model_validate(value)
    except ValueError:
        return None


def _message_of(error: ErrorBodyWire | None) -> str:
    if error is None or error.message is None:
        return ""
    message = error.message
    if isinstance(message, str):
        return message
    if isinstance(message, dict) and isinstance(message.get("detail"), list):
        message = message["detail"]
    if isinstance(message, list) and all(isinstance(item, dict) for item in message):
        # A validation report (Mistral's 422, pydantic-shaped): location and complaint only,
        # as each item's "input" echoes the offending request, prompt text included.
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', ()))}: {item.get('msg', '')}".strip(": ")
            for item in message
        )
    return orjson.dumps(message).decode()
