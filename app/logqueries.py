"""Reading the prediction database: feedback lookups, labelled rows, counts, recent inputs."""

from __future__ import annotations

from sqlalchemy import func, select, union_all
from sqlalchemy.engine import Engine

from app.predictlog import feedback, predictions


def known_predictions(engine: Engine, ids: list[str]) -> dict[str, dict]:
    """Answered (non-shadow) predictions by id, with whether feedback already exists."""
    query = (select(predictions.c.id, predictions.c.model_version, feedback.c.seq)
             .outerjoin(feedback, feedback.c.prediction_id == predictions.c.id)
             .where(predictions.c.id.in_(ids), predictions.c.parent_id.is_(None)))
    with engine.connect() as conn:
        return {r.id: {"model_version": r.model_version, "has_feedback": r.seq is not None}
                for r in conn.execute(query)}


def last_feedback_seq(engine: Engine) -> int:
    """Highest feedback sequence number (0 when empty)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(feedback.c.seq), 0))).scalar())


def _with_feedback(columns: list, *where):
    """Predictions joined to their feedback: answered rows by id, shadow rows by parent."""
    answered = select(*columns).join(feedback, feedback.c.prediction_id == predictions.c.id)
    shadow = (select(*columns).join(feedback, feedback.c.prediction_id == predictions.c.parent_id)
              .where(predictions.c.parent_id.isnot(None)))  # the partial index's condition
    return union_all(answered.where(*where), shadow.where(*where)).subquery()


def labelled(engine: Engine, model_name: str, version: str | None = None, since: float = 0.0,
             limit: int = 100_000) -> list:
    """Predictions that have feedback (shadow rows share their parent's feedback)."""
    where = [predictions.c.model_name == model_name, feedback.c.created_at >= since]
    if version is not None:
        where.append(predictions.c.model_version == version)
    rows = _with_feedback([predictions.c.model_version, predictions.c.prediction,
                           predictions.c.probability, predictions.c.lower, predictions.c.upper,
                           feedback.c.true_value, feedback.c.seq], *where)
    query = (select(rows.c.model_version, rows.c.prediction, rows.c.probability, rows.c.lower,
                    rows.c.upper, rows.c.true_value)
             .order_by(rows.c.seq.desc()).limit(limit))
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
    rows = _with_feedback([predictions.c.model_version], predictions.c.model_name == model_name)
    query = select(rows.c.model_version, func.count()).group_by(rows.c.model_version)
    with engine.connect() as conn:
        return {v: int(n) for v, n in conn.execute(query)}
