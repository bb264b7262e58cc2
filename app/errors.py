"""JSON errors: ``{"error": ..., "details": [...]}`` for every failure, never a stack trace.

Unexpected errors are answered 500 and their traceback is logged at ERROR.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered to the client as JSON.

    Args:
        status: HTTP status code.
        error: short message.
        details: optional list of per-item details.
        headers: optional extra response headers.
    """

    def __init__(self, status: int, error: str, details=None, headers=None):
        super().__init__(error)
        self.status, self.error = status, error
        self.details, self.headers = list(details or []), dict(headers or {})


def too_many(n: int, cap: int, what: str) -> None:
    """413 when a request carries more than ``cap`` ``what`` (records, items)."""
    if n > cap:
        raise ApiError(413, f"too many {what}: {n} > {cap}", [f"send at most {cap} {what}"])


def field_errors(exc: ValidationError, prefix: tuple = ()) -> list[dict]:
    """One entry per bad field, without echoing inputs or the schema.

    Args:
        exc: the pydantic validation error.
        prefix: location prefix (e.g. ``("records",)``).

    Returns:
        ``[{"field": "Age", "message": ..., "type": ...}, ...]``
    """
    out = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = [str(p) for p in (*prefix, *err["loc"])]
        out.append({"field": ".".join(loc) or "body", "message": err["msg"], "type": err["type"]})
    return out


def error_response(status: int, error: str, details=(), headers=None):
    """A JSON error response."""
    resp = jsonify({"error": error, "details": list(details)})
    resp.status_code = status
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def register_error_handlers(app: Flask) -> None:
    """Answer every error as JSON; unexpected errors are logged and answered generically."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.error, exc.details, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        headers = {k: v for k, v in exc.get_headers() if k.lower() not in ("content-type",)}
        if exc.code == 429:
            return error_response(429, "rate limit exceeded", [str(exc.description)], headers)
        return error_response(exc.code or 500, str(exc.name), (), headers)

    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeout)
    def _database_busy(exc: Exception):
        # Locked, busy or unreachable prediction database: the transaction was rolled back,
        # so nothing was half-written; the client may retry.
        log.warning("prediction database unavailable: %s", type(exc).__name__)
        return error_response(503, "prediction database busy, nothing was stored; retry",
                              [], {"Retry-After": "1"})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # The traceback goes to the server log (with the request id of this request, see
        # app.logs); the client gets the id in X-Request-Id and no internals.
        log.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
        return error_response(500, "internal server error")
