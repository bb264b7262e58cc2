"""State changes to alerts: compare-and-set on ``health_states``, one alert row per change."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import orjson
from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from app.prediction_log import db
from caretflow.alerts import KINDS
from caretflow.alerts import alert_id as _alert_id

log = logging.getLogger(__name__)
UNKNOWN = "unknown"  # the state before the first observation


@dataclass(frozen=True)
class Change:
    """The alert a state change raises; ``hold``: the new state must hold first."""

    kind: str
    text: str
    details: dict = field(default_factory=dict)
    hold: bool = False


def add_alert(conn, kind: str, model_name: str, version: str | None, status: str, text: str,
              details: dict, urls: tuple[str, ...], key: str, now: float | None = None) -> dict:
    """Insert one alert (id derived from ``key``) and its deliveries, in ``conn``'s transaction.

    A second insert with the same ``key`` raises ``IntegrityError``: the caller's transaction
    then rolls back, so a change observed by several workers becomes one alert.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    now = time.time() if now is None else now
    row = {"alert_id": _alert_id(kind, model_name, version, key), "kind": kind,
           "model_name": model_name, "model_version": version, "status": status, "text": text,
           "details": orjson.dumps(details).decode(), "created_at": now}
    conn.execute(insert(db.alerts).values(**row))
    if urls:
        conn.execute(insert(db.alert_deliveries), [
            {"alert_id": row["alert_id"], "url": url, "attempts": 0, "next_at": now}
            for url in urls])
    log.warning("alert %s: %s", kind, text)
    return row


def record_event(engine: Engine, kind: str, model_name: str, version: str | None, status: str,
                 text: str, details: dict, urls: tuple[str, ...], key: str) -> dict | None:
    """One alert for an event (a promotion, a rollback); None if ``key`` was already alerted."""
    try:
        with engine.begin() as conn:
            return add_alert(conn, kind, model_name, version, status, text, details, urls, key)
    except IntegrityError:
        return None


def observe(engine: Engine, model_name: str, version: str, kind: str, status: str,
            alert_for, urls: tuple[str, ...], hold_seconds: float = 0.0,
            now: float | None = None, alert_version: str | None = None) -> dict | None:
    """Record the status just computed for one version; alert when it has changed.

    Args:
        engine: the prediction database.
        model_name: registered model name.
        version: the model version.
        kind: which state (``health``, ``drift``, ``ab``).
        status: the status computed now (e.g. ``healthy``, ``degraded``).
        alert_for: ``(old, new) -> Change | None``: the alert a change raises (None: the
            change is recorded without an alert).
        urls: webhook URLs.
        hold_seconds: how long a new status must hold before a ``Change`` with ``hold``
            counts (no flapping); other changes count at once.
        now: the time (tests).
        alert_version: the model version the alert names (default ``version``).

    The first observation moves from ``unknown``, so a version that is degraded when first
    seen raises its alert too.

    Returns:
        The alert row written, or None (no change, not held long enough, or another worker
        recorded this change first).
    """
    now = time.time() if now is None else now
    s = db.health_states
    key = and_(s.c.model_name == model_name, s.c.model_version == version, s.c.kind == kind)
    row = _state(engine, key)
    if row is None:
        try:
            with engine.begin() as conn:
                conn.execute(insert(s).values(model_name=model_name, model_version=version,
                                              kind=kind, status=UNKNOWN, changed_at=now))
        except IntegrityError:
            pass  # another worker saw it first
        row = _state(engine, key)
    if row.status == status:
        if row.candidate is not None:
            _set(engine, key, row, candidate=None, candidate_since=None)
        return None
    change = alert_for(row.status, status)
    if change is not None and change.hold and hold_seconds > 0:
        if row.candidate != status:
            _set(engine, key, row, candidate=status, candidate_since=now)
            return None
        if now - (row.candidate_since or now) < hold_seconds:
            return None
    try:
        with engine.begin() as conn:
            moved = conn.execute(update(s).where(key, s.c.status == row.status,
                                                 s.c.changed_at == row.changed_at)
                                 .values(status=status, candidate=None, candidate_since=None,
                                         changed_at=now)).rowcount
            if moved != 1:
                return None  # another worker moved it
            if change is None:
                return None
            return add_alert(conn, change.kind, model_name, alert_version or version, status,
                             change.text,
                             change.details, urls,
                             key=f"{kind}:{row.status}->{status}@{row.changed_at}", now=now)
    except IntegrityError:
        return None


def _state(engine: Engine, key):
    with engine.connect() as conn:
        return conn.execute(select(db.health_states).where(key)).first()


def _set(engine: Engine, key, row, **values) -> None:
    s = db.health_states
    with engine.begin() as conn:
        conn.execute(update(s).where(key, s.c.status == row.status).values(**values))


def recent(engine: Engine, limit: int = 100, model_name: str | None = None) -> list[dict]:
    """The newest alerts first, with their delivery state."""
    a, d = db.alerts, db.alert_deliveries
    query = select(a).order_by(a.c.created_at.desc()).limit(limit)
    if model_name is not None:
        query = query.where(a.c.model_name == model_name)
    with engine.connect() as conn:
        rows = [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(query)]
        ids = [r["alert_id"] for r in rows]
        sent: dict[str, list] = {}
        if ids:
            for r in conn.execute(select(d.c.alert_id, d.c.url, d.c.sent_at, d.c.attempts)
                                  .where(d.c.alert_id.in_(ids))):
                sent.setdefault(r.alert_id, []).append(
                    {"url": r.url, "sent_at": r.sent_at, "attempts": r.attempts})
    for r in rows:
        r["details"] = orjson.loads(r["details"])
        r["deliveries"] = sent.get(r["alert_id"], [])
    return rows
