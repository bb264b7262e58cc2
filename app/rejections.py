"""Records rejected by validation, written to the prediction log by field and reason.

A request whose records fail the serving contract is answered 422 with one detail per bad
field (``app.errors.field_errors``). Before that answer leaves, ``recorded`` writes one
``rejections`` row per field and reason code: how many of the request's records had that
problem, the model and version, the route and the request id. Never a rejected value
(the details carry none either), so personal columns never reach the log this way. The
monitor step counts them per window (``caretflow.monitoring.quality``).

Writing is best effort: a busy database loses the rejection rows, not the 422.
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import contextmanager

from flask import request
from sqlalchemy.exc import SQLAlchemyError

from app import telemetry
from app.errors import ApiError
from app.logs import request_id
from app.prediction_log.db import rejections

log = logging.getLogger(__name__)
_IN_BATCH = re.compile(r"records\.(\d+)(?:\.(.+))?")


def _reason(reasons: list[str]) -> str:
    """One reason per bad field of a record.

    A union field (an id given as number or text) fails once per member; the member of the
    wrong type says little (``string_type``, ``int_parsing``, ``value_error``: "must be a
    number"), so the first other reason wins (``string_too_long``, ``int_from_float``).
    """
    telling = [r for r in reasons if not r.endswith(("_type", "_parsing")) and r != "value_error"]
    return (telling or reasons)[0]


def by_field(details: list) -> dict[tuple[str, str], int]:
    """(field, reason code) -> records with that problem, from 422 details.

    ``records.3.Age`` counts record 3 under ``Age``; ``records.3`` (not an object) under
    ``record``; a location inside a field (a union member) under the field itself. A record
    counts once per bad field.
    """
    reasons: dict[tuple[int, str], list[str]] = {}
    for d in details:
        if not isinstance(d, dict):
            continue
        where = str(d.get("field") or "body")
        match = _IN_BATCH.fullmatch(where)
        position, field = (int(match.group(1)), match.group(2) or "record") if match else (
            0, where)
        reasons.setdefault((position, field.split(".")[0][:100]), []).append(
            str(d.get("type") or "invalid")[:64])
    counts: dict[tuple[str, str], int] = {}
    for (_, field), found in reasons.items():
        key = (field, _reason(found))
        counts[key] = counts.get(key, 0) + 1
    return counts


def _version(st, body) -> str | None:
    """The requested version when the request named a known one, else the serving default."""
    name = body.get("version_name") if isinstance(body, dict) else None
    if isinstance(name, str) and name:
        known = st.store.aliases
        return known.get(name) or (name if name in known.values() else None)
    return st.store.default.version if st.store.default is not None else None


def record(st, details: list, body) -> int:
    """Write the rejection rows of one 422; returns how many were written."""
    counts = by_field(details)
    if not counts:
        return 0
    records = body.get("records") if isinstance(body, dict) else None
    carried = len(records) if isinstance(records, list) else 1
    route = request.url_rule.rule if request.url_rule else request.path
    common = {"created_at": time.time(), "request_id": request_id(), "route": route[:100],
              "model_name": st.store.name, "model_version": _version(st, body),
              "request_rows": carried}
    rows = [{**common, "field": f, "reason": r, "rows": n} for (f, r), n in counts.items()]
    counter = telemetry.get().rejected_rows
    for (field, reason), n in counts.items():
        counter.labels(field, reason).inc(n)
    try:
        with st.engine.begin() as conn:
            conn.execute(rejections.insert(), rows)
    except SQLAlchemyError as exc:
        log.warning("%d rejection row(s) not recorded: %s", len(rows), type(exc).__name__)
        return 0
    return len(rows)


@contextmanager
def recorded(st, body):
    """Record the 422 raised inside the block (by field and reason), then let it through."""
    try:
        yield
    except ApiError as exc:
        if exc.status == 422:
            record(st, exc.details, body)
        raise
