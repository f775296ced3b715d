"""The adapters' shared pieces: transport error classification, Retry-After, exceptions."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from pydantic import BaseModel

from contracts.errors import ErrorCode
from services.workers.providers._decoding import load_json, validate_wire
from services.workers.providers.base import (
    RequestTranslationError,
    VendorProtocolError,
    classify_transport_error,
)
from services.workers.providers.retry_after import MAX_RETRY_AFTER_S, retry_after_seconds

_CONN = aiohttp.client_reqrep.ConnectionKey("api.openai.com", 443, True, True, None, None, None)


class _Wire(BaseModel):
    id: str


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


# What a library or Python says, never Switchyard: class names, errno, socket and parser text.
_LIBRARY_WORDING = re.compile(
    r"[A-Za-z]+(Error|Exception|Timeout)\b|errno|aiohttp|orjson|pydantic|socket|transport|"
    r"payload is not|peer|char \d|line \d|\[|<|\(|api\.openai\.com|443",
    re.IGNORECASE,
)

_TRANSPORT_KINDS: dict[str, Exception] = {
    "connect timeout": aiohttp.ConnectionTimeoutError(
        "Connection timeout to host https://api.openai.com/v1/chat/completions"
    ),
    "read timeout": aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
    "total timeout": TimeoutError(),
    "payload cut short": aiohttp.ClientPayloadError(
        "Response payload is not completed: <TransferEncodingError: 400, message='Not enough"
        " data to satisfy transfer length header.'>"
    ),
    "connection reset": aiohttp.ClientOSError(104, "Connection reset by peer"),
    "reset while writing": aiohttp.ClientConnectionResetError("Cannot write to closing transport"),
    "bare reset": ConnectionResetError(104, "Connection reset by peer"),
    "server disconnected": aiohttp.ServerDisconnectedError("Server disconnected"),
    "connection refused": aiohttp.ClientConnectorError(
        _CONN, ConnectionRefusedError(111, "Connect call failed ('10.0.0.1', 443)")
    ),
    "dns": aiohttp.ClientConnectorDNSError(_CONN, socket.gaierror(-2, "Name or service not known")),
    "tls": aiohttp.ClientConnectorCertificateError(
        _CONN, ssl.SSLCertVerificationError("certificate verify failed: self-signed certificate")
    ),
    "our bug": aiohttp.InvalidURL("not a url"),
}


@pytest.mark.parametrize("exc", _TRANSPORT_KINDS.values(), ids=_TRANSPORT_KINDS.keys())
def test_transport_messages_are_products_words_and_the_detail_is_logged(
    exc: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="services.workers.providers"):
        info = classify_transport_error(exc, provider="openai", model="gpt-4o", request_id="r-1")
    assert info.message[0].isupper()
    assert info.message.endswith(".")
    assert _LIBRARY_WORDING.search(info.message) is None, info.message
    assert type(exc).__name__ not in info.message
    if str(exc):
        assert str(exc) not in info.message
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    logged = record.getMessage() + (caplog.text if record.exc_info else "")
    assert type(exc).__name__ in logged
    assert "provider=openai model=gpt-4o request_id=r-1" in logged


def test_transport_kinds_are_told_apart() -> None:
    messages = {
        name: classify_transport_error(exc).message for name, exc in _TRANSPORT_KINDS.items()
    }
    assert messages["connect timeout"] != messages["read timeout"]
    assert messages["payload cut short"] == "The connection to the vendor was lost mid-response."
    assert messages["read timeout"] == "The vendor did not answer in time."
    assert messages["connection refused"] == "The vendor could not be reached."
    assert messages["dns"] != messages["connection refused"]


async def _serve_once(
    reply: Callable[[asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reply(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/v1/chat/completions"


async def _cut_body(writer: asyncio.StreamWriter) -> None:
    writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n{"id": ')
    await writer.drain()
    writer.close()


async def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()


async def _silence(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(5)


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (_cut_body, ErrorCode.VENDOR_UNREACHABLE),
        (_reset, ErrorCode.VENDOR_UNREACHABLE),
        (_silence, ErrorCode.VENDOR_TIMEOUT),
    ],
)
async def test_real_socket_failures_read_as_products_words(
    reply: Callable[[asyncio.StreamWriter], Awaitable[None]], code: ErrorCode
) -> None:
    async def call(url: str) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=b"{}", timeout=aiohttp.ClientTimeout(sock_read=0.2)) as answer,
        ):
            await answer.read()

    async for url in _serve_once(reply):
        with pytest.raises((aiohttp.ClientError, TimeoutError)) as caught:
            await call(url)
    info = classify_transport_error(caught.value)
    assert info.code is code
    assert _LIBRARY_WORDING.search(info.message) is None, info.message


async def test_refused_connection_reads_as_products_words() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError) as caught:
            await session.post(f"http://127.0.0.1:{port}/")
    info = classify_transport_error(caught.value)
    assert (info.code, info.message) == (
        ErrorCode.VENDOR_UNREACHABLE,
        "The vendor could not be reached.",
    )


@pytest.mark.parametrize(
    ("decode", "parser_text"),
    [
        (lambda: load_json(b'{"id": ', what="chat completion"), "line 1"),
        (lambda: validate_wire(_Wire, {"id": 5}, what="chat completion"), "string_type"),
    ],
)
def test_unreadable_answers_keep_the_parsers_text_in_the_log(
    decode: Callable[[], object], parser_text: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), pytest.raises(VendorProtocolError) as caught:
        decode()
    message = caught.value.info.message
    assert message.startswith("The vendor's answer could not be read: the chat completion ")
    assert parser_text not in message
    assert _LIBRARY_WORDING.search(message) is None, message
    assert parser_text in caplog.text


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
