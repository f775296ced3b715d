"""Reading a JSON request body with a size limit, before anything else looks at it."""

from __future__ import annotations

import orjson
from starlette.requests import ClientDisconnect, Request

from contracts.errors import ErrorCode, ErrorInfo
from services.ingress.errors import ApiError


async def read_json_body(request: Request, *, limit: int) -> object:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    # Count while reading: a chunked body has no Content-Length to trust.
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect as exc:
        # Nobody will read the answer; end the request without an error log.
        raise ApiError(
            ErrorInfo(code=ErrorCode.INVALID_REQUEST, message="The client disconnected.")
        ) from exc
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(
            ErrorInfo(code=ErrorCode.INVALID_REQUEST, message="The request body is empty.")
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            ErrorInfo(
                code=ErrorCode.INVALID_REQUEST,
                message=f"The request body is not valid JSON: {exc}",
            )
        ) from exc


def _too_large(limit: int) -> ApiError:
    return ApiError(
        ErrorInfo(
            code=ErrorCode.PAYLOAD_TOO_LARGE,
            message=f"The request body is larger than the limit of {limit} bytes.",
        )
    )
