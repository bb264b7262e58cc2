"""POST every alert to every webhook URL: claimed by one worker, retried with backoff."""

from __future__ import annotations

import logging
import time
import uuid

import orjson
import requests
from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Engine

from app.prediction_log import db

log = logging.getLogger(__name__)
CLAIM_TIMEOUT = 30.0  # a claim older than this (its worker died) is taken over
MAX_BACKOFF = 300.0
BATCH = 50


def payload(alert: dict) -> dict:
    """The webhook JSON (DESIGN.md "Observe and act")."""
    return {"alert_id": alert["alert_id"], "kind": alert["kind"],
            "model_name": alert["model_name"], "model_version": alert["model_version"],
            "status": alert["status"], "text": alert["text"],
            "details": orjson.loads(alert["details"]) if isinstance(alert["details"], str)
            else alert["details"], "created_at": alert["created_at"]}


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
            error = self._post(row.url, payload(alert))
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

    def _post(self, url: str, body: dict) -> str | None:
        try:
            resp = self.session.post(url, data=orjson.dumps(body), timeout=self.timeout,
                                     headers={"Content-Type": "application/json"})
        except requests.RequestException as exc:
            return f"{type(exc).__name__}: {exc}"
        return None if resp.status_code < 300 else f"HTTP {resp.status_code}"
