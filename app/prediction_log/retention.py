"""Retention of the prediction log: groups and labels older than a number of days are purged.

Off by default (``PREDICTION_RETENTION_DAYS`` unset). One worker per server instance runs
``purge`` in the background (``app.leadership``); deletes are idempotent, so several
instances never conflict beyond waiting for each other. A retrain snapshot already logged
to MLflow keeps its copy of the rows.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from app.prediction_log.db import labels, metadata, prediction_groups

log = logging.getLogger(__name__)
PURGE_SECONDS = 600.0  # how often the background loop purges
BATCH = 2000  # rows per delete transaction (short locks on SQLite)


def _purge(engine: Engine, table, key, cutoff: float) -> int:
    """Delete ``table``'s rows created before ``cutoff``, ``BATCH`` keys per transaction."""
    deleted = 0
    while True:
        with engine.begin() as conn:
            keys = conn.execute(select(key).where(table.c.created_at < cutoff).distinct()
                                .limit(BATCH)).scalars().all()
            if not keys:
                return deleted
            deleted += conn.execute(delete(table).where(key.in_(keys),
                                                        table.c.created_at < cutoff)).rowcount


def purge(engine: Engine, days: float, now: float | None = None) -> dict[str, int]:
    """Delete prediction groups scored and labels received more than ``days`` days ago.

    The server's rejection counts (table ``rejections``, when the log has it) age out too.

    Args:
        engine: the prediction database.
        days: the retention (> 0).
        now: the time (tests).

    Returns:
        Rows deleted per table.
    """
    if days <= 0:
        raise ValueError(f"retention must be positive, not {days} days")
    cutoff = (time.time() if now is None else now) - days * 86400.0
    deleted = {"prediction_groups": _purge(engine, prediction_groups,
                                           prediction_groups.c.request_id, cutoff),
               "labels": _purge(engine, labels, labels.c.seq, cutoff)}
    rejections = metadata.tables.get("rejections")
    if rejections is not None:
        deleted["rejections"] = _purge(engine, rejections, rejections.c.id, cutoff)
    if any(deleted.values()):
        log.info("retention %g days: purged %s", days, deleted)
    return deleted
