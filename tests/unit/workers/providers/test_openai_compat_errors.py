"""Classification of OpenAI-compatible vendors' error answers."""

from __future__ import annotations

import logging

import pytest

from contracts.errors import ErrorCode
from services.workers.providers.base import MAX_VENDOR_MESSAGE_CHARS
from services.workers.providers.openai_compat import classify_openai_error
from tests.unit.workers.providers.provider_testkit import read_payload


@pytest.mark.parametrize(
    ("status", "payload", "code", "retryable"),
    [
        (400, "openai/error_invalid_request.json", ErrorCode.INVALID_REQUEST, False),
        (400, "openai/error_context_length.json", ErrorCode.CONTEXT_LENGTH_EXCEEDED, False),
        (400, "openai/error_gemini_list.json", ErrorCode.INVALID_REQUEST, False),
        (422, "openai/error_mistral_422.json", ErrorCode.INVALID_REQUEST, False),
        (401, "openai/error_auth.json", ErrorCode.VENDOR_AUTH, False),
        (403, "openai/error_auth.json", ErrorCode.VENDOR_AUTH, False),
        (404, "openai/error_model_not_found.json", ErrorCode.VENDOR_ERROR, False),
        (429, "openai/error_rate_limit.json", ErrorCode.VENDOR_RATE_LIMITED, True),
        (429, "openai/error_insufficient_quota.json", ErrorCode.VENDOR_RATE_LIMITED, False),
    ],
)
def test_recorded_error_bodies(status: int, payload: str, code: ErrorCode, retryable: bool) -> None:
    info = classify_openai_error(status, {}, read_payload(payload))
    assert (info.code, info.retryable, info.vendor_status) == (code, retryable, status)
    assert info.message
    assert not info.message.startswith(("{", "["))


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (402, ErrorCode.VENDOR_AUTH, False),
        (408, ErrorCode.VENDOR_ERROR, True),
        (409, ErrorCode.VENDOR_ERROR, True),
        (413, ErrorCode.PAYLOAD_TOO_LARGE, False),
        (418, ErrorCode.VENDOR_ERROR, False),
        (500, ErrorCode.VENDOR_ERROR, True),
        (502, ErrorCode.VENDOR_ERROR, True),
        (503, ErrorCode.VENDOR_OVERLOADED, True),
        (504, ErrorCode.VENDOR_ERROR, True),
        (529, ErrorCode.VENDOR_OVERLOADED, True),
        (599, ErrorCode.VENDOR_ERROR, True),
    ],
)
def test_status_table(status: int, code: ErrorCode, retryable: bool) -> None:
    info = classify_openai_error(status, {}, b"")
    assert (info.code, info.retryable) == (code, retryable)
    assert info.message == f"The vendor answered with HTTP status {status}."


def test_vendor_message_and_param_are_kept() -> None:
    info = classify_openai_error(400, {}, read_payload("openai/error_invalid_request.json"))
    assert info.message == "Invalid value for 'temperature': expected a number between 0 and 2."
    assert info.param == "temperature"
    gemini = classify_openai_error(400, {}, read_payload("openai/error_gemini_list.json"))
    assert gemini.message == "Request contains an invalid argument."
    mistral = classify_openai_error(422, {}, read_payload("openai/error_mistral_422.json"))
    assert mistral.message == "body.seed: Extra inputs are not permitted"


def test_context_length_recognised_by_message_alone() -> None:
    body = (
        b'{"error": {"message": "Input is too long: too many tokens for this model", "code": null}}'
    )
    assert classify_openai_error(400, {}, body).code is ErrorCode.CONTEXT_LENGTH_EXCEEDED


def test_long_messages_are_truncated_and_html_is_not_echoed() -> None:
    body = ('{"error": {"message": "' + "x" * 5000 + '"}}').encode()
    assert len(classify_openai_error(500, {}, body).message) == MAX_VENDOR_MESSAGE_CHARS
    html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    assert classify_openai_error(502, {}, html).message == (
        "The vendor answered with HTTP status 502."
    )


@pytest.mark.parametrize(
    "body",
    [
        b"upstream connect error or disconnect/reset before headers. reset reason: overflow",
        b'{"unexpected": "shape"}',
    ],
)
def test_bodies_without_a_vendor_message_are_logged_not_passed_on(
    body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        info = classify_openai_error(503, {}, body)
    assert info.message == "The vendor answered with HTTP status 503."
    assert body.decode()[:40] in caplog.text


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "20"}, 20.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after-ms": "1632", "retry-after": "2"}, 1.632),
        ({}, None),
        ({"retry-after": "soon"}, None),
    ],
)
def test_rate_limit_retry_after(headers: dict[str, str], expected: float | None) -> None:
    info = classify_openai_error(429, headers, read_payload("openai/error_rate_limit.json"))
    assert info.retry_after_s == expected


def test_retry_after_is_reported_for_overload_but_not_for_client_errors() -> None:
    assert classify_openai_error(503, {"retry-after": "3"}, b"").retry_after_s == 3.0
    assert classify_openai_error(400, {"retry-after": "3"}, b"").retry_after_s is None


@pytest.mark.parametrize("code", ["content_policy_violation", "content_filter"])
def test_a_content_policy_refusal_is_its_own_kind(code: str) -> None:
    body = (
        b'{"error": {"message": "Your request was rejected as a result of our safety system.",'
        b' "type": "invalid_request_error", "param": null, "code": "' + code.encode() + b'"}}'
    )
    info = classify_openai_error(400, {}, body)
    assert info.code is ErrorCode.CONTENT_POLICY
    assert not info.retryable
