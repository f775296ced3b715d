"""Errors as the caller's protocol shapes them. Every failure a route raises is an ``ApiError``
carrying an ``ErrorInfo``; one handler renders it in OpenAI's error shape with its status."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from contracts.errors import ErrorCode, ErrorInfo
from services.ingress.protocols.openai_chat import render_error


class ApiError(Exception):
    def __init__(self, info: ErrorInfo, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(info.message)
        self.info = info
        self.headers = headers or {}


def error_response(info: ErrorInfo, headers: dict[str, str] | None = None) -> JSONResponse:
    headers = dict(headers or {})
    if info.retry_after_s is not None:
        headers["retry-after"] = str(max(1, round(info.retry_after_s)))
    return JSONResponse(render_error(info), status_code=info.code.http_status, headers=headers)


_STATUS_CODES = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.AUTHENTICATION,
    403: ErrorCode.PERMISSION_DENIED,
    404: ErrorCode.MODEL_NOT_FOUND,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    429: ErrorCode.RATE_LIMITED,
}


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.info, exc.headers)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            info = ErrorInfo(code=ErrorCode.INVALID_REQUEST, message="Unknown request URL.")
            return JSONResponse(render_error(info), status_code=404)
        if exc.status_code == 405:
            info = ErrorInfo(code=ErrorCode.INVALID_REQUEST, message="Method not allowed.")
            return JSONResponse(render_error(info), status_code=405)
        code = _STATUS_CODES.get(exc.status_code, ErrorCode.INTERNAL)
        info = ErrorInfo(code=code, message=str(exc.detail))
        return JSONResponse(render_error(info), status_code=exc.status_code)

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        info = ErrorInfo(
            code=ErrorCode.INVALID_REQUEST,
            message=str(first.get("msg", "invalid request")),
            param=".".join(str(part) for part in first.get("loc", ())[1:]) or None,
        )
        return error_response(info)

    async def unexpected(_: Request, exc: Exception) -> Response:
        info = ErrorInfo(code=ErrorCode.INTERNAL, message="Internal error.")
        return error_response(info)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)
