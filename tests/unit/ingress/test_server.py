"""The ingress's uvicorn protocol: a request uvicorn cannot parse is answered in OpenAI's JSON
error shape. Served for real, on a socket, since that refusal happens below the ASGI app."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import orjson
import pytest
import uvicorn
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from services.ingress.server import JsonErrorHttpProtocol


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    await PlainTextResponse("ok")(scope, receive, send)


@pytest.fixture
async def port() -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        ok_app, http=JsonErrorHttpProtocol, lifespan="off", log_level="critical"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    yield sock.getsockname()[1]
    server.should_exit = True
    await task
    sock.close()


async def exchange(port: int, raw: bytes) -> tuple[bytes, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {
        name.decode().lower(): value.decode().strip()
        for name, _, value in (line.partition(b":") for line in lines)
    }
    return status, headers, body


@pytest.mark.parametrize(
    "raw",
    [
        b"NOT A REQUEST\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
    ],
)
async def test_a_malformed_request_gets_a_json_400(port: int, raw: bytes) -> None:
    status, headers, body = await exchange(port, raw)
    assert status == b"HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    assert orjson.loads(body) == {
        "error": {
            "message": "Invalid HTTP request received.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_request",
        }
    }


async def test_a_well_formed_request_is_served_as_before(port: int) -> None:
    status, _, body = await exchange(
        port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == b"HTTP/1.1 200 OK"
    assert body == b"ok"
