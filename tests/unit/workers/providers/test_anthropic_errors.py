"""Classification of Anthropic Messages error answers."""

from __future__ import annotations

import pytest

from contracts.errors import ErrorCode
from services.workers.providers.anthropic import classify_anthropic_error
from tests.unit.workers.providers.provider_testkit import read_payload


@pytest.mark.parametrize(
    ("status", "payload", "code", "retryable"),
    [
        (400, "anthropic/error_invalid_request.json", ErrorCode.INVALID_REQUEST, False),
        (400, "anthropic/error_prompt_too_long.json", ErrorCode.CONTEXT_LENGTH_EXCEEDED, False),
        (401, "anthropic/error_auth.json", ErrorCode.VENDOR_AUTH, False),
        (402, "anthropic/error_billing.json", ErrorCode.VENDOR_AUTH, False),
        (404, "anthropic/error_not_found.json", ErrorCode.VENDOR_ERROR, False),
        (413, "anthropic/error_request_too_large.json", ErrorCode.PAYLOAD_TOO_LARGE, False),
        (429, "anthropic/error_rate_limit.json", ErrorCode.VENDOR_RATE_LIMITED, True),
        (500, "anthropic/error_api.json", ErrorCode.VENDOR_ERROR, True),
        (529, "anthropic/error_overloaded.json", ErrorCode.VENDOR_OVERLOADED, True),
    ],
)
def test_recorded_error_bodies(status: int, payload: str, code: ErrorCode, retryable: bool) -> None:
    info = classify_anthropic_error(status, {}, read_payload(payload))
    assert (info.code, info.retryable, info.vendor_status) == (code, retryable, status)
    assert info.message
    assert not info.message.startswith("{")


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, ErrorCode.INVALID_REQUEST, False),
        (403, ErrorCode.VENDOR_AUTH, False),
        (408, ErrorCode.VENDOR_ERROR, True),
        (409, ErrorCode.VENDOR_ERROR, True),
        (413, ErrorCode.PAYLOAD_TOO_LARGE, False),
        (429, ErrorCode.VENDOR_RATE_LIMITED, True),
        (502, ErrorCode.VENDOR_ERROR, True),
        (503, ErrorCode.VENDOR_OVERLOADED, True),
        (504, ErrorCode.VENDOR_TIMEOUT, True),
        (529, ErrorCode.VENDOR_OVERLOADED, True),
        (451, ErrorCode.VENDOR_ERROR, False),
    ],
)
def test_status_fallback_for_unreadable_bodies(
    status: int, code: ErrorCode, retryable: bool
) -> None:
    info = classify_anthropic_error(status, {}, b"<html><h1>Bad Gateway</h1></html>")
    assert (info.code, info.retryable) == (code, retryable)
    assert info.message == f"The vendor answered with HTTP status {status}."


def test_type_wins_over_status() -> None:
    # A 500 whose body says overloaded is an overload.
    info = classify_anthropic_error(500, {}, read_payload("anthropic/error_overloaded.json"))
    assert info.code is ErrorCode.VENDOR_OVERLOADED


def test_messages_are_kept() -> None:
    info = classify_anthropic_error(400, {}, read_payload("anthropic/error_prompt_too_long.json"))
    assert info.message == "prompt is too long: 215893 tokens > 200000 maximum"


def test_retry_after_on_retryable_errors_only() -> None:
    rate = classify_anthropic_error(
        429, {"retry-after": "12"}, read_payload("anthropic/error_rate_limit.json")
    )
    assert rate.retry_after_s == 12.0
    overloaded = classify_anthropic_error(529, {"Retry-After": "0"}, b"")
    assert overloaded.retry_after_s == 0.0
    auth = classify_anthropic_error(
        401, {"retry-after": "12"}, read_payload("anthropic/error_auth.json")
    )
    assert auth.retry_after_s is None
