"""The one place that turns failures into HTTP responses, all shaped ``{"error": {...}}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistente_app.core.availability import is_outage
from assistente_app.core.errors import (
    AppError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotAuthenticatedError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    TooManyRequestsError,
    error_body,
)

log = logging.getLogger(__name__)

# The `code` of the error answer being sent, for the request middleware's metrics.
response_error_code: ContextVar[str | None] = ContextVar("response_error_code", default=None)

# What a 503 for a PostgreSQL or Redis outage tells clients: a failover takes about this long.
OUTAGE_RETRY_AFTER_S = 5

# A subclass takes the status of its nearest listed ancestor (e.g. QueueFullError → 503).
HTTP_STATUS: Final[Mapping[type[AppError], int]] = {
    AppError: 400,
    InvalidInputError: 400,
    NotAuthenticatedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    PayloadTooLargeError: 413,
    TooManyRequestsError: 429,
    ServiceUnavailableError: 503,
}

_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


class MissingBearerTokenError(NotAuthenticatedError):
    """No ``Authorization: Bearer`` header: the answer names the scheme (RFC 6750)."""


def http_status(exc: AppError) -> int:
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 400


def http_headers(exc: AppError) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, MissingBearerTokenError):
        headers["WWW-Authenticate"] = "Bearer"
    return headers or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        response_error_code.set(exc.code)
        return JSONResponse(
            error_body(exc.code, exc.message),
            status_code=http_status(exc),
            headers=http_headers(exc),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        # Broken JSON is a syntax problem (400); well-formed JSON with wrong fields is 422.
        if any(e["type"] == "json_invalid" for e in errors):
            return JSONResponse(
                error_body("malformed_json", "O corpo da requisição não é um JSON válido.", errors),
                status_code=400,
            )
        return JSONResponse(
            error_body("validation_error", "Dados inválidos na requisição.", errors),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def _dependency_error(_: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL or Redis down is not the client's fault, nor a bug: 503, come back soon.
        if is_outage(exc):
            log.warning("dependency unavailable: %s", type(exc).__name__)
            return JSONResponse(
                error_body(
                    "service_unavailable",
                    "Serviço temporariamente indisponível. Tente novamente em instantes.",
                ),
                status_code=503,
                headers={"Retry-After": str(OUTAGE_RETRY_AFTER_S)},
            )
        return _internal_error(exc)

    # Registered per class (not only for Exception) so Starlette answers them in its exception
    # middleware instead of re-raising them to the server after the response.
    for outage_type in (SQLAlchemyError, RedisError, OSError):
        app.add_exception_handler(outage_type, _dependency_error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return await _dependency_error(request, exc)


def _internal_error(exc: Exception) -> JSONResponse:
    log.exception("unhandled error: %s", type(exc).__name__, exc_info=exc)
    return JSONResponse(
        error_body("internal_error", "Erro interno. Tente novamente em instantes."),
        status_code=500,
    )
