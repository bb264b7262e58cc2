"""The prediction database (SQLAlchemy 2): engine, upkeep and writes.

Its tables live in ``app.prediction_log.tables`` (re-exported here), its queries in
``app.prediction_log.queries``.
"""

from __future__ import annotations

import re
import secrets
import time

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from app.prediction_log.tables import (  # noqa: F401 (the tables are read as db.<name>)
    alert_deliveries,
    alerts,
    health_states,
    labels,
    live_progress,
    metadata,
    metric_outbox,
    prediction_groups,
    rejections,
)

_ID = re.compile(r"[0-9a-f]{32}")


def new_request_id() -> str:
    """28 hex digits: 48 bits of milliseconds, then 64 random bits.

    Time first, so the log's primary key grows at its end (random keys make every insert
    touch a random page of an ever larger index); the random bits keep ids unguessable.
    """
    return f"{time.time_ns() // 1_000_000 & 0xFFFFFFFFFFFF:012x}{secrets.token_hex(8)}"


def prediction_ids(request_id: str, positions) -> list[str]:
    """The prediction ids (32 hex digits) of a request's records at ``positions``."""
    return [f"{request_id}{p:04x}" for p in positions]


def split_id(prediction_id: str) -> tuple[str, int] | None:
    """(request id, record position) of a prediction id; None when it cannot be one."""
    if not isinstance(prediction_id, str) or not _ID.fullmatch(prediction_id):
        return None
    return prediction_id[:28], int(prediction_id[28:], 16)


def _sqlite_pragmas(busy_ms: int, autocheckpoint: bool):
    def apply(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        if not autocheckpoint:  # ``checkpoint`` runs in the background instead
            cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()

    return apply


def make_engine(url: str, busy_timeout: float = 10.0, autocheckpoint: bool = True) -> Engine:
    """Engine for ``url``: a locked/busy database is waited for ``busy_timeout`` seconds.

    SQLite gets WAL, ``synchronous=NORMAL`` and a busy timeout; PostgreSQL gets the same
    bound as ``lock_timeout`` (a locked table fails fast instead of hanging a worker).
    Past the bound the write raises ``OperationalError``, answered as 503 (nothing written).

    Args:
        url: SQLAlchemy URL (``sqlite:///...`` or ``postgresql://...``).
        busy_timeout: seconds to wait for a lock.
        autocheckpoint: SQLite copies the WAL back into the database inside the commit that
            fills it (a request then waits for the copy and its fsync); False leaves that
            to ``checkpoint``, called by a background thread.

    Returns:
        The engine, with every table created.
    """
    busy_ms = max(1, int(busy_timeout * 1000))
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "timeout": busy_timeout})
        event.listen(engine, "connect", _sqlite_pragmas(busy_ms, autocheckpoint))
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=4,
                               connect_args={"options": f"-c lock_timeout={busy_ms}"})
    for attempt in range(3):  # several workers may race to create the tables
        try:
            metadata.create_all(engine, checkfirst=True)
            break
        except (OperationalError, IntegrityError):
            if attempt == 2:
                raise
            time.sleep(0.2)
    return engine


def write(engine: Engine, groups: list[dict], label_rows: list[dict]) -> None:
    """Store scored groups (``prediction_groups`` rows) and inline labels in one transaction."""
    with engine.begin() as conn:
        if groups:
            _insert_groups(conn, groups)
        if label_rows:
            conn.execute(labels.insert(), label_rows)


_GROUPS_INSERT: dict[str, tuple[str, list | None]] = {}  # dialect -> (SQL, parameter order)


def _insert_groups(conn, rows: list[dict]) -> None:
    """``conn.execute(prediction_groups.insert(), rows)``, compiled once for SQLite's driver.

    No column of the table converts its values, so the driver gets what SQLAlchemy would
    pass it (an absent column is NULL); errors are still SQLAlchemy's (``DBAPIError``).
    Drivers with named parameters (PostgreSQL) take the plain statement.
    """
    dialect = conn.dialect
    if dialect.name not in _GROUPS_INSERT:
        compiled = prediction_groups.insert().compile(dialect=dialect)
        order = compiled.positiontup
        _GROUPS_INSERT[dialect.name] = (str(compiled), None if order is None else list(order))
    sql, order = _GROUPS_INSERT[dialect.name]
    if order is None:
        conn.execute(prediction_groups.insert(), rows)
        return
    params = [tuple(r.get(c) for c in order) for r in rows]
    conn.exec_driver_sql(sql, params if len(params) > 1 else params[0])


def checkpoint(engine: Engine) -> tuple[int, int] | None:
    """Copy SQLite's WAL back into the database without waiting for anyone.

    Returns:
        (frames in the WAL, frames copied) for SQLite; None for other databases.
    """
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as conn:
        _busy, frames, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    return int(frames), int(copied)


def analyze(engine: Engine) -> None:
    """Refresh SQLite's planner statistics (PostgreSQL's autovacuum does this itself).

    With them SQLite picks the narrowest index for each query of ``app.prediction_log.queries``.
    """
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        engine.dispose()  # an open connection keeps the statistics it loaded when it opened


def add_labels(engine: Engine, rows: list[dict]) -> bool:
    """Insert label rows atomically; False when one already exists (a concurrent duplicate)."""
    try:
        with engine.begin() as conn:
            conn.execute(labels.insert(), rows)
        return True
    except IntegrityError:
        return False
