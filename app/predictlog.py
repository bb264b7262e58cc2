"""The prediction database (SQLAlchemy 2): predictions, feedback and the live-metric outbox."""

from __future__ import annotations

import time
from operator import itemgetter

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

metadata = MetaData()

predictions = Table(
    "predictions", metadata,
    Column("id", String(32), primary_key=True),
    Column("parent_id", String(32), index=True),  # the answered prediction of a shadow row
    Column("created_at", Float, nullable=False, index=True),
    Column("model_name", String(100), nullable=False),
    Column("model_version", String(20), nullable=False, index=True),
    Column("version_name", String(100)),
    Column("arm", String(16), nullable=False),
    Column("routing_key", String(200)),
    Column("inputs", Text, nullable=False),
    Column("prediction", Float, nullable=False),
    Column("probability", Float),
    Column("lower", Float),
    Column("upper", Float),
)

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


def _sqlite_pragmas(busy_ms: int):
    def apply(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return apply


def make_engine(url: str, busy_timeout: float = 10.0) -> Engine:
    """Engine for ``url``: a locked/busy database is waited for ``busy_timeout`` seconds.

    SQLite gets WAL, ``synchronous=NORMAL`` and a busy timeout; PostgreSQL gets the same
    bound as ``lock_timeout`` (a locked table fails fast instead of hanging a worker).
    Past the bound the write raises ``OperationalError``, answered as 503 (nothing written).

    Args:
        url: SQLAlchemy URL (``sqlite:///...`` or ``postgresql+psycopg2://...``).
        busy_timeout: seconds to wait for a lock.

    Returns:
        The engine, with every table created.
    """
    busy_ms = max(1, int(busy_timeout * 1000))
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "timeout": busy_timeout})
        event.listen(engine, "connect", _sqlite_pragmas(busy_ms))
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


_INSERT_SQL: dict[str, tuple[str, tuple[str, ...]]] = {}


def _positional_insert(dialect) -> tuple[str, tuple[str, ...]] | None:
    """The compiled predictions INSERT and its parameter order, for qmark dialects (SQLite).

    Compiled once per dialect: SQLAlchemy's per-call compile and bind processing costs more
    than the insert itself for a large batch. Named-parameter dialects (psycopg2) return None
    and keep the Core insert, whose multi-row VALUES batching beats the driver's executemany.
    """
    if dialect.name not in _INSERT_SQL:
        compiled = predictions.insert().compile(dialect=dialect)
        if dialect.name != "sqlite" or not compiled.positiontup:
            return None
        _INSERT_SQL[dialect.name] = (str(compiled), tuple(compiled.positiontup))
    return _INSERT_SQL[dialect.name]


def _insert_predictions(conn, rows: list[dict]) -> None:
    cached = _positional_insert(conn.dialect)
    if cached is None:
        conn.execute(predictions.insert(), rows)
        return
    sql, keys = cached
    try:
        params = list(map(itemgetter(*keys), rows))
    except KeyError:  # a row without some optional column: NULL, as the Core insert
        params = [tuple(row.get(k) for k in keys) for row in rows]
    conn.exec_driver_sql(sql, params)


def write(engine: Engine, prediction_rows: list[dict], feedback_rows: list[dict]) -> None:
    """Store predictions (and inline feedback) in one transaction."""
    with engine.begin() as conn:
        if prediction_rows:
            _insert_predictions(conn, prediction_rows)
        if feedback_rows:
            conn.execute(feedback.insert(), feedback_rows)


def known_predictions(engine: Engine, ids: list[str]) -> dict[str, dict]:
    """Answered (non-shadow) predictions by id, with whether feedback already exists."""
    query = (select(predictions.c.id, predictions.c.model_version, feedback.c.seq)
             .outerjoin(feedback, feedback.c.prediction_id == predictions.c.id)
             .where(predictions.c.id.in_(ids), predictions.c.parent_id.is_(None)))
    with engine.connect() as conn:
        return {r.id: {"model_version": r.model_version, "has_feedback": r.seq is not None}
                for r in conn.execute(query)}


def add_feedback(engine: Engine, rows: list[dict]) -> bool:
    """Insert feedback rows atomically; False when one already exists (a concurrent duplicate)."""
    try:
        with engine.begin() as conn:
            conn.execute(feedback.insert(), rows)
        return True
    except IntegrityError:
        return False


def last_feedback_seq(engine: Engine) -> int:
    """Highest feedback sequence number (0 when empty)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(feedback.c.seq), 0))).scalar())


def labelled(engine: Engine, model_name: str, version: str | None = None, since: float = 0.0,
             limit: int = 100_000) -> list:
    """Predictions that have feedback (shadow rows share their parent's feedback)."""
    answered = func.coalesce(predictions.c.parent_id, predictions.c.id)
    query = (select(predictions.c.model_version, predictions.c.prediction,
                    predictions.c.probability, predictions.c.lower, predictions.c.upper,
                    feedback.c.true_value)
             .join(feedback, feedback.c.prediction_id == answered)
             .where(predictions.c.model_name == model_name, feedback.c.created_at >= since)
             .order_by(feedback.c.seq.desc()).limit(limit))
    if version is not None:
        query = query.where(predictions.c.model_version == version)
    with engine.connect() as conn:
        return list(conn.execute(query))


def prediction_counts(engine: Engine, model_name: str, since: float) -> dict[str, int]:
    """Predictions per version since ``since``."""
    query = (select(predictions.c.model_version, func.count())
             .where(predictions.c.model_name == model_name, predictions.c.created_at >= since)
             .group_by(predictions.c.model_version))
    with engine.connect() as conn:
        return {v: int(n) for v, n in conn.execute(query)}


def recent_inputs(engine: Engine, model_name: str, version: str, since: float,
                  limit: int = 5000) -> list[str]:
    """Stored inputs (JSON text) of a version's latest predictions since ``since``."""
    query = (select(predictions.c.inputs)
             .where(predictions.c.model_name == model_name,
                    predictions.c.model_version == version, predictions.c.created_at >= since)
             .order_by(predictions.c.created_at.desc()).limit(limit))
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(query)]


def feedback_counts(engine: Engine, model_name: str) -> dict[str, int]:
    """Labelled predictions per version, all time (shadow rows included)."""
    answered = func.coalesce(predictions.c.parent_id, predictions.c.id)
    query = (select(predictions.c.model_version, func.count())
             .join(feedback, feedback.c.prediction_id == answered)
             .where(predictions.c.model_name == model_name)
             .group_by(predictions.c.model_version))
    with engine.connect() as conn:
        return {v: int(n) for v, n in conn.execute(query)}
