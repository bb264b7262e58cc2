"""Replay a drift scenario's records against a running server: predictions, then feedback.

Used by the end-to-end retraining test and ``bench/retrain_scenario.py``: each batch is one
``POST /predict`` (``{"records": [...]}``) followed by one ``POST /feedback`` with the true
outcomes of those predictions, the way labels arrive in production.
"""

from __future__ import annotations

import requests

from caretflow.data.drift_scenario import Part


class ReplayError(RuntimeError):
    """The server refused a batch (status and body in the message)."""


def _post(url: str, body: dict | list, headers: dict, timeout: float) -> dict:
    r = requests.post(url, json=body, headers=headers, timeout=timeout)
    if r.status_code >= 300:
        raise ReplayError(f"POST {url}: {r.status_code} {r.text[:500]}")
    return r.json()


def replay(server_url: str, headers: dict, part: Part, batch: int = 200,
           version_name: str | None = None, feedback: bool = True,
           timeout: float = 60.0) -> list[dict]:
    """Send ``part`` as predictions and (unless ``feedback`` is off) its labels.

    Args:
        server_url: the server's base URL.
        headers: request headers (the API key).
        part: the records and their true outcomes.
        batch: records per request.
        version_name: ask for this version instead of the default one.
        feedback: send the true outcomes as ``/feedback`` after each batch.
        timeout: seconds per request.

    Returns:
        The prediction objects, in replay order.

    Raises:
        ReplayError: a request was refused.
    """
    base, out = server_url.rstrip("/"), []
    for records, truths in part.batches(batch):
        body: dict = {"records": records}
        if version_name is not None:
            body["version_name"] = version_name
        answers = _post(f"{base}/predict", body, headers, timeout)["predictions"]
        if feedback:
            _post(f"{base}/feedback", [{"prediction_id": a["prediction_id"], "true_value": t}
                                       for a, t in zip(answers, truths, strict=True)],
                  headers, timeout)
        out.extend(answers)
    return out
