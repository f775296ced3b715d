"""``switchyard ingress``: run the ingress under uvicorn."""

from __future__ import annotations

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from contracts.errors import ErrorCode, ErrorInfo
from services.common.ops import configure_logging
from services.ingress.protocols.openai_chat import render_error
from services.ingress.settings import IngressSettings


class JsonErrorHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering a request it cannot parse (a malformed request
    line or header) in OpenAI's JSON error shape instead of uvicorn's plain text, so every
    answer of the ingress is one a client's error handling can read.

    ``send_400_response`` is the one method uvicorn calls for that case, a public method of the
    protocol class that uvicorn's ``http=`` setting accepts; nothing else is changed.
    """

    def send_400_response(self, msg: str) -> None:
        body = orjson.dumps(render_error(ErrorInfo(code=ErrorCode.INVALID_REQUEST, message=msg)))
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


def serve() -> None:
    settings = IngressSettings()
    configure_logging(settings.log_level)
    if settings.admin_key is None:
        raise SystemExit("SWITCHYARD_ADMIN_KEY is not set; `switchyard up` generates one.")
    uvicorn.run(
        "services.ingress.app:create_app",
        factory=True,
        host=settings.ingress_host,
        port=settings.ingress_port,
        workers=settings.ingress_workers if settings.ingress_workers > 1 else None,
        loop="uvloop",
        http=JsonErrorHttpProtocol,
        access_log=False,
        log_level="warning",
        # Many clients keep connections open between requests (the SDKs pool them).
        timeout_keep_alive=30,
    )
