"""Alert payloads and their webhook POST, shared by the server (``app.alerts``) and the steps.

The server stores each alert and retries its deliveries from the prediction database; a step
(``retrain``) that has no server behind it builds the same payload and POSTs it itself.
"""

from __future__ import annotations

import hashlib
import logging
import time

import orjson
import requests

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


def send(kind: str, model_name: str, version: str | None, status: str, text: str,
         details: dict, urls, key: str, timeout: float = 5.0, tries: int = 3) -> dict:
    """Build one alert and POST it to every URL (``tries`` attempts each, 1 s, 2 s apart).

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
        for url in urls:
            for attempt in range(tries):
                error = post(session, url, body, timeout)
                if error is None:
                    break
                log.warning("alert %s to %s failed (try %d): %s", kind, url, attempt + 1, error)
                if attempt + 1 < tries:
                    time.sleep(2.0 ** attempt)
    return body
