"""POST every alert to every webhook URL: claimed by one worker, retried with backoff."""

from __future__ import annotations

import logging
import time
import uuid

import requests
from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Engine

from app.prediction_log import db
from caretflow.alerts import payload, post

log = logging.getLogger(__name__)
CLAIM_TIMEOUT = 30.0  # a claim older than this (its worker died) is taken over
MAX_BACKOFF = 300.0
BATCH = 50


def backoff(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failures (1, 2, 4 ... 300)."""
    return min(MAX_BACKOFF, 2.0 ** max(attempts - 1, 0))


class Deliverer:
    """Sends due deliveries; one ``tick`` per background round.

    Args:
        engine: the prediction database.
        timeout: seconds for one POST.
    """

    def __init__(self, engine: Engine, timeout: float = 5.0):
        self.engine, self.timeout = engine, timeout
        self.session = requests.Session()

    def _claim(self, now: float) -> tuple[str, list]:
        d, token = db.alert_deliveries, uuid.uuid4().hex
        free = or_(d.c.claim.is_(None), d.c.claimed_at < now - CLAIM_TIMEOUT)
        due = and_(d.c.sent_at.is_(None), d.c.next_at <= now, free)
        with self.engine.begin() as conn:
            keys = list(conn.execute(select(d.c.alert_id, d.c.url).where(due)
                                     .order_by(d.c.next_at).limit(BATCH)))
            for alert_id, url in keys:
                conn.execute(update(d).where(d.c.alert_id == alert_id, d.c.url == url, due)
                             .values(claim=token, claimed_at=now))
        with self.engine.connect() as conn:
            rows = list(conn.execute(
                select(d, db.alerts).join(db.alerts, db.alerts.c.alert_id == d.c.alert_id)
                .where(d.c.claim == token)))
        return token, rows

    def tick(self) -> int:
        """POST what is due; returns how many deliveries succeeded."""
        now = time.time()
        token, rows = self._claim(now)
        done = 0
        for row in rows:
            alert = dict(row._mapping)
            error = post(self.session, row.url, payload(alert), self.timeout)
            d = db.alert_deliveries
            key = and_(d.c.alert_id == row.alert_id, d.c.url == row.url, d.c.claim == token)
            values = ({"sent_at": time.time(), "claim": None} if error is None else
                      {"attempts": row.attempts + 1, "claim": None, "last_error": error[:300],
                       "next_at": time.time() + backoff(row.attempts + 1)})
            with self.engine.begin() as conn:
                conn.execute(update(d).where(key).values(**values))
            if error is None:
                done += 1
            else:
                log.warning("alert %s to %s failed (try %d): %s", row.alert_id, row.url,
                            row.attempts + 1, error)
        return done
