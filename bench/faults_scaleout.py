"""Scale-out check: two server instances, one PostgreSQL prediction DB, one Redis, one registry.

Instance A runs two gunicorn workers, instance B one; both point at the same ``mlflow
server``, ``PREDICTION_DB_URL`` and ``RATE_LIMIT_STORAGE_URI``. Measured: how long after a
``/load_version`` through A the other instance serves the new version, whether feedback
through either instance lands in one live-metric series, and whether one rate limit holds
across all three workers.

    python -m bench.faults_scaleout --prediction-db postgresql://postgres@127.0.0.1/x \
        --redis redis://127.0.0.1:6379 --mlflow-backend postgresql://postgres@127.0.0.1/y

(the same as ``python -m bench.faults_run scaleout ...``: a fresh published ``mlflow server``
over a copy of ``--tracking-uri``, figures to ``bench/results/reliability/scaleout.json``).
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from pathlib import Path

import requests
from mlflow.tracking import MlflowClient

from bench.faults_env import ADMIN_KEY, CLIENT_KEY, Gunicorn
from bench.load_mixed import RECORD
from caretflow.launch import MlflowServer as TrackingServer
from caretflow.launch import wait_until

log = logging.getLogger("bench.faults_scaleout")
LIMIT = 200  # per key and hour, shared through Redis


def _post(url: str, path: str, body, key: str = CLIENT_KEY):
    return requests.post(f"{url}{path}", json=body, headers={"X-API-Key": key}, timeout=30)


def _switch(a: Gunicorn, b: Gunicorn) -> dict:
    """Move the serving alias through A; time until every worker of B (and A) serves it."""
    current = b.health()["default_version"]
    listing = requests.get(f"{a.url}/versions", headers={"X-API-Key": CLIENT_KEY},
                           timeout=30).json()
    target = next(v for v in listing["versions"] if v["version"] != current)
    r = _post(a.url, f"/load_version/{target['version']}", None, ADMIN_KEY)
    moved = time.monotonic()
    assert r.status_code == 200, r.text

    def served_by(inst: Gunicorn) -> bool:
        seen = inst.worker_healths(calls_per_worker=4)
        return len(seen) == inst.workers and {
            body["default_version"] for body in seen.values()} == {target["version"]}

    b_done = wait_until(lambda: served_by(b), 30, 0.05)
    b_after = time.monotonic() - moved
    a_done = wait_until(lambda: served_by(a), 30, 0.05)
    answer = _post(b.url, "/predict", RECORD).json()
    return {"target_version": target["version"], "other_instance_serves_after_s":
            round(b_after, 2) if b_done else None, "all_workers_switched": bool(a_done and b_done),
            "predict_on_other_instance_version": answer["model_version"]}


def _feedback_crosswise(a: Gunicorn, b: Gunicorn, tracking_url: str, n: int = 20) -> dict:
    """Predict through both instances, send each feedback through the *other* instance."""
    recs = [{**RECORD, "Age": 20 + i, "CustomerId": f"so-{uuid.uuid4().hex[:8]}"}
            for i in range(n)]
    pa = _post(a.url, "/predict", {"records": recs[: n // 2]}).json()["predictions"]
    pb = _post(b.url, "/predict", {"records": recs[n // 2:]}).json()["predictions"]
    sent = 0
    for preds, via in ((pa, b), (pb, a)):
        truths = [{"prediction_id": p["prediction_id"], "true_value": i % 2}
                  for i, p in enumerate(preds)]
        sent += _post(via.url, "/feedback", truths).json()["recorded"]
    version = pa[0]["model_version"]
    client = MlflowClient(tracking_url)
    run_id = client.get_model_version("churn", version).run_id
    started = time.monotonic()

    def logged():
        hist = client.get_metric_history(run_id, "live_accuracy")
        return [m for m in hist if m.step == n] or None

    at_n = wait_until(logged, 60, 0.5)
    return {"feedback_sent": n, "feedback_recorded": sent, "live_metric_step": n,
            "live_metric_copies_at_step": len(at_n or []),
            "live_metric_logged_after_s": round(time.monotonic() - started, 2)}


def _limit(a: Gunicorn, b: Gunicorn, probe_key: str, extra: int = 30) -> dict:
    """Cheap requests (422) with one key spread over every worker of both instances."""
    codes = [_post((a, b)[i % 2].url, "/feedback", {}, probe_key).status_code
             for i in range(LIMIT + extra)]
    limited = [c for c in codes if c == 429]
    return {"limit": LIMIT, "sent": len(codes), "allowed": len(codes) - len(limited),
            "limited_429": len(limited), "server_errors": sum(c >= 500 for c in codes)}


def scaleout(tracking: TrackingServer, workdir: Path, prediction_db: str, redis_uri: str) -> dict:
    """Run the three checks against two fresh instances; returns the figures."""
    probe = f"limit-probe-{uuid.uuid4().hex}"
    env = {"RATE_LIMIT": f"{LIMIT}/hour", "RATE_LIMIT_STORAGE_URI": redis_uri,
           "ALIAS_REFRESH_SECONDS": 1, "LIVE_METRICS_SECONDS": 1,
           "API_KEYS": f"{CLIENT_KEY},{probe}"}
    a = Gunicorn(workdir / "a", tracking.url, prediction_db, workers=2, **env)
    b = Gunicorn(workdir / "b", tracking.url, prediction_db, workers=1, **env)
    try:
        a.start()
        b.start()
        wait_until(lambda: len(a.worker_healths()) == 2, 60)
        return {"instances": {"a_workers": 2, "b_workers": 1}, "switch": _switch(a, b),
                "feedback": _feedback_crosswise(a, b, tracking.url),
                "rate_limit": _limit(a, b, probe)}
    finally:
        a.stop()
        b.stop()


def main() -> None:
    """CLI: ``python -m bench.faults_run scaleout`` with the same flags."""
    from bench import faults_run

    faults_run.main(["scaleout", *sys.argv[1:]])


if __name__ == "__main__":
    main()
