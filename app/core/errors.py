"""One error shape for every failure: `{"detail", "code", "request_id"}`.

Installed by `create_app()`; covers our typed errors, Starlette's HTTP errors, validation
errors (422 keeps FastAPI's list) and anything unexpected (500, generic message, trace in the log).
"""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any

import structlog
from asgi_correlation_id.context import correlation_id
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import AppError

log = structlog.get_logger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def code_for_status(status: int) -> str:
    if status in _CODES:
        return _CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def error_response(
    status: int,
    detail: Any,
    code: str,
    headers: dict[str, str] | None = None,
    *,
    outside_middleware: bool = False,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    request_id = correlation_id.get() or uuid.uuid4().hex
    merged = dict(headers or {})
    if outside_middleware:
        # A 500 is sent by Starlette's outermost middleware, past the request-ID middleware.
        merged["X-Request-ID"] = request_id
    # `extra`: fields an error adds to the one shape (a policy refusal's `violations`).
    body = {"detail": detail, "code": code, **(extra or {}), "request_id": request_id}
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=merged)


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if exc.status_code >= 500:
        log.warning("request.upstream_error", code=exc.code, detail=exc.detail)
    headers = getattr(exc, "headers", None)
    extra = getattr(exc, "body_extra", None)
    return error_response(exc.status_code, exc.detail, exc.code, headers, extra=extra)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = getattr(exc, "code", None) or code_for_status(exc.status_code)
    detail = exc.detail
    if detail is None or detail == "":
        detail = HTTPStatus(exc.status_code).phrase
    return error_response(exc.status_code, detail, code, dict(exc.headers or {}))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # `input` would echo what the client sent (passwords included): leave it out.
    errors = [
        {k: v for k, v in err.items() if k != "input" and (k != "ctx" or _plain(v))}
        for err in exc.errors()
    ]
    return error_response(422, errors, "validation_error")


def _plain(ctx: Any) -> bool:
    return isinstance(ctx, dict) and all(isinstance(v, str | int | float) for v in ctx.values())


async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
    log.error("request.unhandled_error", exc_info=exc)
    return error_response(500, "Internal server error", "internal_error", outside_middleware=True)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unhandled)
