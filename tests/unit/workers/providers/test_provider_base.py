"""The adapters' shared pieces: transport error classification, Retry-After, exceptions."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from contracts.errors import ErrorCode
from services.workers.providers.base import (
    RequestTranslationError,
    VendorProtocolError,
    classify_transport_error,
)
from services.workers.providers.retry_after import MAX_RETRY_AFTER_S, retry_after_seconds

_CONN = aiohttp.client_reqrep.ConnectionKey("api.openai.com", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    ("exc", "code", "retryable"),
    [
        (TimeoutError(), ErrorCode.VENDOR_TIMEOUT, True),
        (aiohttp.ServerTimeoutError("read timed out"), ErrorCode.VENDOR_TIMEOUT, True),
        (aiohttp.ConnectionTimeoutError("connect timed out"), ErrorCode.VENDOR_TIMEOUT, True),
        (
            aiohttp.ClientConnectorError(_CONN, OSError(111, "refused")),
            ErrorCode.VENDOR_UNREACHABLE,
            True,
        ),
        (aiohttp.ServerDisconnectedError(), ErrorCode.VENDOR_UNREACHABLE, True),
        (aiohttp.ClientPayloadError("body cut short"), ErrorCode.VENDOR_UNREACHABLE, True),
        (aiohttp.InvalidURL("not a url"), ErrorCode.INTERNAL, False),
        (ValueError("bug"), ErrorCode.INTERNAL, False),
        (VendorProtocolError("truncated"), ErrorCode.VENDOR_BAD_RESPONSE, True),
    ],
)
def test_transport_errors(exc: Exception, code: ErrorCode, retryable: bool) -> None:
    info = classify_transport_error(exc)
    assert (info.code, info.retryable) == (code, retryable)
    assert info.message


def test_translation_error_is_the_callers_fault() -> None:
    info = RequestTranslationError("image type image/bmp is not accepted", param="messages").info
    assert (info.code, info.retryable, info.param) == (ErrorCode.INVALID_REQUEST, False, "messages")


NOW = datetime(2025, 7, 7, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "Mon, 07 Jul 2025 12:00:30 GMT"}, 30.0),
        ({"retry-after": "Mon, 07 Jul 2025 11:59:00 GMT"}, 0.0),  # in the past
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "86400"}, MAX_RETRY_AFTER_S),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "4"}, 4.0),
        ({"RETRY-AFTER": "7"}, 7.0),
        ({}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers, now=NOW) == expected


def test_retry_after_reads_aiohttp_headers() -> None:
    assert retry_after_seconds(CIMultiDictProxy(CIMultiDict({"Retry-After": "2"}))) == 2.0
