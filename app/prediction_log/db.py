"""The prediction database (SQLAlchemy 2): engine, upkeep and writes.

Its tables live in ``app.prediction_log.tables`` (re-exported here), its queries in
``app.prediction_log.queries``.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
import time
import weakref

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from app.prediction_log import writer_lock
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
RESTART_FRAMES = 1000  # WAL frames (4 kB pages) a background checkpoint lets pile up
RESTART_WAIT_MS = 10  # how long that checkpoint may wait, holding writers off, for others
WAL_LIMIT_BYTES = 64 << 20  # the WAL file is trimmed to this when it starts over


def new_request_id() -> str:
    """28 hex digits: 48 bits of milliseconds, then 64 random bits.

    Time first, so the log's primary key grows at its end (random keys make every insert
    touch a random page of an ever larger index); the random bits keep ids unguessable.
    """
    return f"{time.time_ns() // 1_000_000 & 0xFFFFFFFFFFFF:012x}{secrets.token_hex(8)}"


@functools.cache
def _positions() -> tuple[str, ...]:
    """The 4 hex digits of every record position (0 to 65535: ``MAX_BATCH``'s range)."""
    return tuple(f"{p:04x}" for p in range(1 << 16))


def prediction_ids(request_id: str, positions) -> list[str]:
    """The prediction ids (32 hex digits) of a request's records at ``positions``.

    Raises:
        IndexError: a position beyond 65535 (a prediction id has four digits for it).
    """
    return [request_id + p for p in map(_positions().__getitem__, positions)]


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
        cur.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
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
    """Store scored groups (``prediction_groups`` rows) and inline labels in one transaction.

    SQLite writes through this thread's own connection (``_own_connection``), with the
    statements compiled once: no pool checkout and no SQLAlchemy execution context per
    request. Errors are SQLAlchemy's (``DBAPIError``, answered as 503) either way.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            if groups:
                conn.execute(prediction_groups.insert(), groups)
            if label_rows:
                conn.execute(labels.insert(), label_rows)
        return
    raw = _own_connection(engine)
    statement = None
    try:
        inserts = [_insert_values(engine, table, rows) for table, rows in (
            (prediction_groups, groups), (labels, label_rows)) if rows]
        cur = raw.cursor()
        with writer_lock.exclusive(engine):  # the other workers' writes queue in the kernel
            for statement, values in inserts:
                cur.executemany(statement, values)
            raw.commit()
    except Exception as exc:
        _drop_own_connection(engine)
        if isinstance(exc, engine.dialect.loaded_dbapi.Error):
            raise DBAPIError.instance(statement, None, exc,
                                      engine.dialect.loaded_dbapi.Error) from exc
        raise


_INSERTS: dict[tuple, tuple[str, list]] = {}  # (table, keys) -> (SQL, parameter order)
_LOCAL = threading.local()


def _insert_sql(engine: Engine, table, keys: tuple[str, ...]) -> tuple[str, list]:
    """The INSERT of ``keys`` into ``table``, compiled once, and its parameter order.

    The rows of one write share their keys (as SQLAlchemy's ``executemany`` requires). No
    column of these tables converts its values, so the driver gets what SQLAlchemy would
    pass it.
    """
    cache_key = (table.name, keys)
    if cache_key not in _INSERTS:
        compiled = table.insert().compile(dialect=engine.dialect, column_keys=list(keys))
        _INSERTS[cache_key] = (str(compiled), list(compiled.positiontup))
    return _INSERTS[cache_key]


def _insert_values(engine: Engine, table, rows: list[dict]) -> tuple[str, list[tuple]]:
    """The INSERT of ``rows`` into ``table`` and its parameters, one tuple per row."""
    statement, order = _insert_sql(engine, table, tuple(rows[0]))
    return statement, [tuple(r.get(c) for c in order) for r in rows]


def _own_connection(engine: Engine):
    """The calling thread's DBAPI connection to ``engine``'s database.

    Made by the engine's pool (so it has the engine's pragmas), then detached from it: the
    pool is not held. Kept per thread and engine until a write fails.
    """
    conns = getattr(_LOCAL, "conns", None)
    if conns is None:
        conns = _LOCAL.conns = weakref.WeakKeyDictionary()  # gone with its engine
    raw = conns.get(engine)
    if raw is None:
        raw = engine.raw_connection()
        raw.detach()
        conns[engine] = raw
    return raw


def _drop_own_connection(engine: Engine) -> None:
    """Roll back and close this thread's connection after a failed write (a new one follows)."""
    raw = getattr(_LOCAL, "conns", {}).pop(engine, None)
    if raw is None:
        return
    try:
        raw.rollback()
        raw.close()
    except Exception:  # noqa: BLE001 - a broken connection is dropped either way
        pass


def checkpoint(engine: Engine, restart_frames: int = RESTART_FRAMES) -> tuple[int, int] | None:
    """Copy SQLite's WAL back into the database, and let it start over once it has grown.

    A passive copy waits for nobody, but SQLite only starts a WAL over when a write finds
    every frame copied, which never happens while writes keep coming (each arrives during
    the copy): under steady traffic the WAL then grows without bound, and every write gets
    slower as it does. So when more than ``restart_frames`` frames are left after the
    passive copy, a RESTART checkpoint copies the rest while holding writers off (at most
    ``RESTART_WAIT_MS`` of waiting; it retries next time when busy), after which the next
    write starts the WAL from its beginning (``journal_size_limit`` trims the file).

    Returns:
        (frames in the WAL, frames copied) after the last checkpoint; None for other
        databases.
    """
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as conn:
        _busy, frames, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        if frames > restart_frames:
            wait = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            conn.exec_driver_sql(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
            try:
                with writer_lock.exclusive(engine):  # request writes wait in the kernel
                    _busy, frames, copied = conn.exec_driver_sql(
                        "PRAGMA wal_checkpoint(RESTART)").one()
            finally:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={wait}")
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
