"""Reading a JSON request body before anything else looks at it: its content type, its size,
its syntax and how deeply it nests are all checked here, each refusal a 4xx naming the problem."""

from __future__ import annotations

import orjson
from starlette.requests import ClientDisconnect, Request

from contracts.errors import ErrorCode, ErrorInfo
from services.ingress.errors import ApiError
from services.ingress.protocols._json import check_nesting
from services.ingress.protocols.errors import ProtocolError

# How deeply objects and arrays may nest in a request body (the body itself is level 1).
# A real request needs few levels: a tool's JSON Schema sits at level 5 and OpenAI's structured
# outputs allow 10 levels of nesting inside it. Deeper bodies used to pass ingress and then fail
# further on (orjson refuses to serialise past 255 levels, pydantic and the workers' recursion
# somewhat before that, the sealed envelope adding levels of its own), ending as a 500 after
# the request had been queued. 64 keeps far clear of every such limit while refusing nothing a
# vendor would accept.
MAX_JSON_DEPTH = 64
JSON_MEDIA_TYPE = "application/json"


async def read_json_body(request: Request, *, limit: int) -> object:
    _require_json_content_type(request.headers.get("content-type"))
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
    return decode_json_body(b"".join(chunks))


def decode_json_body(raw: bytes) -> object:
    """The decoded body, refused (``ApiError``, 400) unless it is JSON nested at most
    ``MAX_JSON_DEPTH`` levels deep."""
    if not raw.strip():
        raise ApiError(
            ErrorInfo(code=ErrorCode.INVALID_REQUEST, message="The request body is empty.")
        )
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            # orjson stops at 1024 levels, before our own check can say where.
            raise ApiError(
                ErrorInfo(code=ErrorCode.INVALID_REQUEST, message=_too_deep_message())
            ) from exc
        raise ApiError(
            ErrorInfo(
                code=ErrorCode.INVALID_REQUEST,
                message=f"The request body is not valid JSON: {exc}",
            )
        ) from exc
    try:
        check_nesting(payload, max_depth=MAX_JSON_DEPTH)
    except ProtocolError as exc:
        raise ApiError(exc.info) from exc
    return payload


def _require_json_content_type(content_type: str | None) -> None:
    # Parameters are allowed: `application/json; charset=utf-8` is what many HTTP libraries send.
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == JSON_MEDIA_TYPE:
        return
    if content_type is None:
        message = (
            f"Missing content type. This API method only accepts '{JSON_MEDIA_TYPE}' requests, "
            f"but you did not specify a 'Content-Type' header. Please try again with the header "
            f"'Content-Type: {JSON_MEDIA_TYPE}'."
        )
    else:
        # OpenAI's wording for the same refusal.
        message = (
            f"Unsupported content type: '{content_type}'. This API method only accepts "
            f"'{JSON_MEDIA_TYPE}' requests, but you specified the header "
            f"'Content-Type: {content_type}'. Please try again with a supported content type."
        )
    raise ApiError(ErrorInfo(code=ErrorCode.INVALID_REQUEST, message=message))


def _too_deep_message() -> str:
    return (
        f"The request body is nested too deeply: at most {MAX_JSON_DEPTH} levels of objects "
        f"and arrays are allowed."
    )


def _too_large(limit: int) -> ApiError:
    return ApiError(
        ErrorInfo(
            code=ErrorCode.PAYLOAD_TOO_LARGE,
            message=f"The request body is larger than the limit of {limit} bytes.",
        )
    )
