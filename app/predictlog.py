"""The prediction database (SQLAlchemy 2): tables, engine, upkeep and writes.

Its queries live in ``app.logqueries``.
"""

from __future__ import annotations

import time
from itertools import repeat

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.schema import CreateIndex

metadata = MetaData()

predictions = Table(
    "predictions", metadata,
    Column("id", String(32), primary_key=True),
    Column("parent_id", String(32)),  # the answered prediction of a shadow row
    Column("created_at", Float, nullable=False),
    Column("model_name", String(100), nullable=False),
    Column("model_version", String(20), nullable=False),
    Column("version_name", String(100)),
    Column("arm", String(16), nullable=False),
    Column("routing_key", String(200)),
    Column("inputs", Text, nullable=False),
    Column("prediction", Float, nullable=False),
    Column("probability", Float),
    Column("lower", Float),
    Column("upper", Float),
)

# Feedback joins an answered prediction by its id and a shadow row by its parent (partial
# index: only shadow rows pay for it); health and drift read one version's recent rows.
# Ids grow with time (``new_ids``), so every index takes a batch at its end.
Index("ix_predictions_parent", predictions.c.parent_id,
      sqlite_where=predictions.c.parent_id.isnot(None),
      postgresql_where=predictions.c.parent_id.isnot(None))
Index("ix_predictions_version_time", predictions.c.model_name, predictions.c.model_version,
      predictions.c.created_at)

feedback = Table(
    "feedback", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("prediction_id", String(32), nullable=False, unique=True),
    Column("true_value", Float, nullable=False),
    Column("created_at", Float, nullable=False, index=True),
    Column("source", String(8), nullable=False),
)

live_progress = Table(
    "live_progress", metadata,
    Column("model_name", String(100), primary_key=True),
    Column("model_version", String(20), primary_key=True),
    Column("feedback_count", Integer, nullable=False),
)

metric_outbox = Table(
    "metric_outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("key", String(100), nullable=False),
    Column("value", Float, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("claim", String(32)),
    Column("claimed_at", Float),
    Column("sent", Boolean, nullable=False, default=False),
)


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
        url: SQLAlchemy URL (``sqlite:///...`` or ``postgresql+psycopg2://...``).
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
            with engine.begin() as conn:  # a log made by an older release lacks them
                for index in predictions.indexes:
                    conn.execute(CreateIndex(index, if_not_exists=True))
            break
        except (OperationalError, IntegrityError):
            if attempt == 2:
                raise
            time.sleep(0.2)
    return engine


_INSERT_SQL: dict[tuple, tuple[str, tuple[str, ...]]] = {}


def _present(groups: list[dict]) -> list[tuple[list[str], list]]:
    """Per group: the columns that hold a value, and their values (constants repeated).

    All-NULL columns are left out of the statement: they are NULL by default, and binding
    None is the slowest parameter type of Python's sqlite3 module.
    """
    out = []
    for cols in groups:
        n = len(cols["id"])
        names, values = [], []
        for name, value in cols.items():
            if isinstance(value, list):
                if all(v is None for v in value):
                    continue
            elif value is None:
                continue
            else:
                value = repeat(value, n)
            names.append(name)
            values.append(value)
        out.append((names, values))
    return out


def _insert_sql(dialect, names: list[str]) -> tuple[str, tuple[str, ...]]:
    """The positional INSERT of ``names`` and its parameter order (compiled once)."""
    key = (dialect.name, *names)
    if key not in _INSERT_SQL:
        compiled = predictions.insert().compile(dialect=dialect, column_keys=names)
        _INSERT_SQL[key] = (str(compiled), tuple(compiled.positiontup))
    return _INSERT_SQL[key]


def _insert_predictions(conn, groups: list[dict]) -> None:
    """Insert column groups (see ``app.predicting.log_columns``).

    SQLite (qmark) takes the rows as tuples through one precompiled statement: SQLAlchemy's
    per-call compile and bind processing costs more than the insert itself for a large
    batch. Named-parameter dialects (psycopg2) keep the Core insert, whose multi-row VALUES
    batching beats the driver's executemany.
    """
    for names, values in _present(groups):
        if conn.dialect.name == "sqlite":
            sql, order = _insert_sql(conn.dialect, names)
            by_name = dict(zip(names, values, strict=True))
            conn.exec_driver_sql(sql, list(zip(*(by_name[k] for k in order), strict=True)))
        else:
            rows = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
            conn.execute(predictions.insert(), rows)


def write(engine: Engine, prediction_groups: list[dict], feedback_rows: list[dict]) -> None:
    """Store predictions (column groups) and inline feedback in one transaction."""
    with engine.begin() as conn:
        if prediction_groups:
            _insert_predictions(conn, prediction_groups)
        if feedback_rows:
            conn.execute(feedback.insert(), feedback_rows)


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

    Without them SQLite walks every prediction of a model to find the few with feedback;
    with them it starts from the feedback and looks predictions up by id.
    """
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        engine.dispose()  # an open connection keeps the statistics it loaded when it opened


def add_feedback(engine: Engine, rows: list[dict]) -> bool:
    """Insert feedback rows atomically; False when one already exists (a concurrent duplicate)."""
    try:
        with engine.begin() as conn:
            conn.execute(feedback.insert(), rows)
        return True
    except IntegrityError:
        return False
