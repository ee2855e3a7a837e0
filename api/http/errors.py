"""The one place where failures become HTTP responses, all in one shape.

Every error body is `{"error": {"code", "message", "details", "request_id"}}`;
stack traces never leave the process (they go to the structured log).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import structlog
from eventsourcing.persistence import IntegrityError as StoreIntegrityError
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.http.responses import JSONResponse
from api.store.database import DatabaseUnavailable
from api.store.ingest import BatchRejected
from domain.errors import NotFound

log = structlog.get_logger("crm.http")

RETRY_AFTER_SECONDS = "2"

UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    psycopg.OperationalError,
    PoolTimeout,
    StoreOperationalError,
    StoreInterfaceError,
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """Raised by routes and dependencies; rendered by `error_response`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def request_id_of(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value else None


def error_response(
    request: Request | None,
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    request_id = request_id_of(request) if request is not None else None
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": details or [],
            "request_id": request_id,
        }
    }
    all_headers = dict(headers or {})
    if request_id:
        all_headers["X-Request-ID"] = request_id
    return JSONResponse(body, status_code=status, headers=all_headers)


def unavailable(request: Request | None, message: str) -> JSONResponse:
    return error_response(
        request,
        503,
        "unavailable",
        message,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def internal_error(request: Request | None) -> JSONResponse:
    return error_response(
        request,
        500,
        "internal_error",
        "an unexpected error occurred; quote the request id when reporting it",
    )


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, UNAVAILABLE_ERRORS):
        return True
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        return "locked" in text or "busy" in text or "unable to open" in text
    return False


def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(
        request, error.status, error.code, error.message, error.details, error.headers
    )


def _batch_rejected(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, BatchRejected)
    details = [
        {
            "index": p.index,
            "event_id": p.event_id,
            "field": p.field,
            "message": p.message,
            "code": p.code,
        }
        for p in error.problems
    ]
    return error_response(request, error.status, error.code, error.message, details)


def _not_found(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, NotFound)
    return error_response(request, 404, error.code, error.message)


def _http_exception(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "http_error")
    message = error.detail if isinstance(error.detail, str) else code
    if error.status_code == 404 and message == "Not Found":
        message = "no such resource"
    return error_response(
        request, error.status_code, code, message, headers=dict(error.headers or {})
    )


def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details = [
        {
            "index": None,
            "event_id": None,
            "field": ".".join(str(part) for part in item.get("loc", ())),
            "message": item.get("msg", "invalid"),
        }
        for item in error.errors()
    ]
    first = details[0]["field"] if details else "request"
    return error_response(
        request, 422, "invalid_request", f"{first}: invalid value", details
    )


def _store_failure(request: Request, error: Exception) -> JSONResponse:
    if is_unavailable(error):
        log.warning("http.database_unavailable", error=type(error).__name__)
        return unavailable(request, "the database is unavailable; retry later")
    if isinstance(error, StoreIntegrityError):
        log.warning("http.write_contention")
        return unavailable(request, "too many concurrent writes; retry later")
    log.error("http.unhandled", exc_info=error)
    return internal_error(request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(BatchRejected, _batch_rejected)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for kind in (*UNAVAILABLE_ERRORS, sqlite3.OperationalError, StoreIntegrityError):
        app.add_exception_handler(kind, _store_failure)
