"""Server logs: one line format (or JSON lines), ``LOG_LEVEL``, the request id on every line.

Under gunicorn, ``gunicorn_config`` is the whole logging set-up of the master and its workers
(error log, access log, ``app.*``, ``caretflow.*`` and everything else through the root
logger). Elsewhere (tests, ``flask run``, scripts) ``ensure_handlers`` gives ``app.*`` and
``caretflow.*`` a stderr handler only when the host configured no logging of its own.

Every HTTP request gets an id (``install``): the prefix of its prediction ids, the
``X-Request-Id`` response header, and the ``request_id`` of every log record emitted while
it runs (``-`` outside requests).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import Flask, g, has_request_context

from app.prediction_log.db import new_request_id

HEADER = "X-Request-Id"
LOGGERS = ("app", "caretflow")  # this project's loggers
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LINE = "%(asctime)s [%(process)d] [%(levelname)s] [%(request_id)s] %(name)s: %(message)s"
ACCESS_ATOM = "{x-request-id}o"  # gunicorn's access-log atom of the response header
# The id of a request answered below Flask (``app.lean``), which has no ``g``.
LEAN_ID: ContextVar[str | None] = ContextVar("caretflow_lean_request_id", default=None)


def level() -> str:
    """``LOG_LEVEL`` (default ``INFO``), checked."""
    value = os.environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if value not in LEVELS:
        raise ValueError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, not {value!r}")
    return value


def log_format() -> str:
    """``LOG_FORMAT``: ``line`` (default) or ``json``."""
    value = os.environ.get("LOG_FORMAT", "line").strip().lower() or "line"
    if value not in ("line", "json"):
        raise ValueError(f"LOG_FORMAT must be 'line' or 'json', not {value!r}")
    return value


def current_id() -> str | None:
    """The id of the request being answered (in Flask or ``app.lean``), else None."""
    return g.get("request_id") if has_request_context() else LEAN_ID.get()


def request_id() -> str:
    """The current request's id; a new id outside a request (scripts, benchmarks)."""
    return current_id() or new_request_id()


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id``: the request being answered, else ``-``.

    Access-log records are written after the request ended: theirs comes from the
    ``X-Request-Id`` header of the response they describe.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``request_id``; never drops a record."""
        rid = current_id()
        if rid is None and isinstance(record.args, dict):
            rid = record.args.get(ACCESS_ATOM)
        record.request_id = rid or "-"
        return True


def _iso_time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class LineFormatter(logging.Formatter):
    """``LINE`` with an ISO 8601 UTC time; a traceback follows on the next lines."""

    def __init__(self):
        super().__init__(LINE)

    def formatTime(self, record, datefmt=None) -> str:  # noqa: N802 - logging's name
        """ISO 8601 in UTC, milliseconds."""
        return _iso_time(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, pid, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON (a traceback is in ``exc_info``)."""
        exc = self.formatException(record.exc_info) if record.exc_info else None
        if record.stack_info:
            exc = "\n".join(filter(None, (exc, self.formatStack(record.stack_info))))
        return json.dumps({"time": _iso_time(record), "level": record.levelname,
                           "logger": record.name, "message": record.getMessage(),
                           "request_id": getattr(record, "request_id", "-"),
                           "pid": record.process, "exc_info": exc},
                          ensure_ascii=False, default=str)


def formatter() -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` asks for."""
    return JsonFormatter() if log_format() == "json" else LineFormatter()


def handler(stream) -> logging.Handler:
    """A handler writing to ``stream`` in the ``LOG_FORMAT``, with request ids."""
    out = logging.StreamHandler(stream)
    out.setFormatter(formatter())
    out.addFilter(RequestIdFilter())
    return out


def gunicorn_config(access_log: str | None) -> dict:
    """``logging.config.dictConfig`` of a gunicorn master and its workers.

    Args:
        access_log: gunicorn's ``accesslog``: None (no access lines), ``-`` (stdout) or a file.

    Returns:
        The configuration: one formatter and the request-id filter on every handler; the
        project's loggers and gunicorn's error log at ``LOG_LEVEL``; other libraries at
        WARNING (or ``LOG_LEVEL`` when higher).
    """
    lvl = level()
    factory = f"{__name__}.{'JsonFormatter' if log_format() == 'json' else 'LineFormatter'}"
    stream = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
              "formatter": "caretflow", "filters": ["request_id"]}
    handlers = {"stderr": stream}
    if access_log == "-":
        handlers["access"] = {**stream, "stream": "ext://sys.stdout"}
    elif access_log:
        handlers["access"] = {"class": "logging.FileHandler", "filename": access_log,
                              "formatter": "caretflow", "filters": ["request_id"]}
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"caretflow": {"()": factory}},
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "handlers": handlers,
        "root": {"level": max(lvl, "WARNING", key=LEVELS.index), "handlers": ["stderr"]},
        "loggers": {
            **{name: {"level": lvl, "propagate": True} for name in LOGGERS},
            "gunicorn.error": {"level": lvl, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "propagate": False,
                                "handlers": ["access"] if "access" in handlers else []},
        },
    }


def _configured(logger: logging.Logger) -> bool:
    """Whether a record of ``logger`` reaches a real handler (NullHandlers do not count)."""
    while logger is not None:
        if any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


def ensure_handlers() -> None:
    """Outside gunicorn: a stderr handler for ``app.*`` / ``caretflow.*`` if none is set.

    A host that configured logging (its own handlers, pytest's capture, gunicorn) keeps its
    set-up untouched; calling this again adds nothing.
    """
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _configured(logger):
            continue
        logger.addHandler(handler(sys.stderr))
        logger.setLevel(level())


def install(app: Flask) -> None:
    """Give every request of ``app`` an id, in ``g.request_id`` and the response header.

    The id is assigned before any other ``before_request`` hook (rate limits, keys), so the
    lines those write carry it too.
    """

    def assign() -> None:
        g.request_id = new_request_id()

    def answer(response):
        response.headers[HEADER] = g.get("request_id") or "-"
        return response

    def forget(_exc) -> None:  # an outer app context (tests, scripts) must not keep it
        g.pop("request_id", None)

    app.before_request_funcs.setdefault(None, []).insert(0, assign)
    app.after_request(answer)
    app.teardown_request(forget)
