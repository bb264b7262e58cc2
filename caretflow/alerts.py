"""Alert payloads and their webhook POST, shared by the server (``app.alerts``) and the steps.

The server stores each alert and retries its deliveries from the prediction database; a step
(``retrain``) that has no server behind it builds the same payload and POSTs it itself, then
(``send(..., db_url=...)``) stores it in that database's ``alerts`` table, so ``GET /alerts``
lists it, with one ``alert_deliveries`` row per URL: sent, or left due for a server to retry.
The tables belong to ``app.prediction_log.db``; they are reflected by name
(``caretflow.monitoring.log_reader``), never imported from ``app``.
"""

from __future__ import annotations

import hashlib
import logging
import time

import orjson
import requests
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from caretflow.monitoring.log_reader import LogReader

log = logging.getLogger(__name__)
KINDS = ("model_degraded", "model_recovered", "drift", "ab_verdict", "promoted",
         "rolled_back", "retrain_finished")


def alert_id(*parts) -> str:
    """The alert's id: a digest of what makes it unique (so one change is one alert)."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]


def payload(alert: dict) -> dict:
    """The webhook JSON (DESIGN.md "Observe and act")."""
    details = alert["details"]
    return {"alert_id": alert["alert_id"], "kind": alert["kind"],
            "model_name": alert["model_name"], "model_version": alert["model_version"],
            "status": alert["status"], "text": alert["text"],
            "details": orjson.loads(details) if isinstance(details, str) else details,
            "created_at": alert["created_at"]}


def post(session: requests.Session, url: str, body: dict, timeout: float) -> str | None:
    """POST ``body`` as JSON; None on success, else the error in one line."""
    try:
        resp = session.post(url, data=orjson.dumps(body, default=str,
                                                      option=orjson.OPT_SERIALIZE_NUMPY),
                            timeout=timeout,
                            headers={"Content-Type": "application/json"})
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if resp.status_code < 300 else f"HTTP {resp.status_code}"


def _deliver(session: requests.Session, url: str, body: dict, kind: str, timeout: float,
             tries: int) -> tuple[int, str | None]:
    """POST ``body`` to ``url`` up to ``tries`` times; (failed tries, last error or None)."""
    error = None
    for attempt in range(tries):
        error = post(session, url, body, timeout)
        if error is None:
            return attempt, None
        log.warning("alert %s to %s failed (try %d): %s", kind, url, attempt + 1, error)
        if attempt + 1 < tries:
            time.sleep(2.0 ** attempt)
    return tries, error


def store(db_url: str, body: dict, deliveries: dict[str, tuple[int, str | None]]) -> bool:
    """Insert an alert sent by ``send`` into the prediction database's ``alerts`` table.

    Args:
        db_url: SQLAlchemy URL of the prediction database (``PREDICTION_DB_URL``).
        body: the payload sent.
        deliveries: per URL, (failed tries, last error or None when it took the alert).

    Returns:
        Whether it was stored; False when the database has no alert tables, holds this
        alert already, or cannot be written (logged: the alert was sent all the same).
    """
    reader = LogReader(db_url)
    try:
        table, sent = reader.table("alerts"), reader.table("alert_deliveries")
        if table is None or sent is None:
            log.warning("alert %s not stored: no alerts table in the prediction database",
                        body["kind"])
            return False
        now = time.time()
        row = {**body, "details": orjson.dumps(body["details"], default=str,
                                               option=orjson.OPT_SERIALIZE_NUMPY).decode()}
        with reader.engine.begin() as conn:
            conn.execute(insert(table).values(**row))
            if deliveries:
                conn.execute(insert(sent), [
                    {"alert_id": body["alert_id"], "url": url[:500], "attempts": failed,
                     "next_at": now, "sent_at": now if error is None else None,
                     "last_error": error[:300] if error else None}
                    for url, (failed, error) in deliveries.items()])
        return True
    except IntegrityError:
        return False  # stored before: one alert per id
    except SQLAlchemyError as exc:
        log.warning("alert %s not stored in the prediction database: %s", body["kind"], exc)
        return False
    finally:
        reader.engine.dispose()


def send(kind: str, model_name: str, version: str | None, status: str, text: str,
         details: dict, urls, key: str, timeout: float = 5.0, tries: int = 3,
         db_url: str | None = None) -> dict:
    """Build one alert and POST it to every URL (``tries`` attempts each, 1 s, 2 s apart).

    Args:
        kind: one of ``KINDS``.
        model_name: registered model name.
        version: the model version it is about, or None.
        status: the status it reports (``champion``, ``kept`` ...).
        text: one human sentence.
        details: JSON-able details.
        urls: webhook URLs.
        key: what makes the alert unique (its id is a digest of it).
        timeout: seconds per POST.
        tries: attempts per URL.
        db_url: the prediction database to store the alert in (``store``); None: not stored.

    Returns:
        The payload sent (also when a URL never took it: that is logged as a warning).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    body = payload({"alert_id": alert_id(kind, model_name, version, key), "kind": kind,
                    "model_name": model_name, "model_version": version, "status": status,
                    "text": text, "details": details, "created_at": time.time()})
    log.warning("alert %s: %s", kind, text)
    with requests.Session() as session:
        deliveries = {url: _deliver(session, url, body, kind, timeout, tries) for url in urls}
    if db_url:
        store(db_url, body, deliveries)
    return body
