"""Fault scenarios against a published ``mlflow server``: outage under load, start while down.

``python -m bench.faults_run mlflow_outage|registry_start`` runs them (see there).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import requests
from mlflow.tracking import MlflowClient

from bench import load_mixed
from bench.faults_env import CLIENT_KEY, Gunicorn, sqlite_db
from caretflow.launch import MlflowServer as TrackingServer
from caretflow.launch import wait_until

log = logging.getLogger("bench.faults_tracking")


def _live_steps(client: MlflowClient, name: str, db: str) -> dict:
    """Per version: feedback count in the DB vs the last ``live_accuracy`` step on its run."""
    from sqlalchemy import create_engine

    from app.prediction_log.queries import feedback_counts

    engine = create_engine(db)
    try:
        counts = feedback_counts(engine, name)
    finally:
        engine.dispose()
    out = {}
    for version, count in counts.items():
        run_id = client.get_model_version(name, version).run_id
        hist = client.get_metric_history(run_id, "live_accuracy")
        at_count = [m for m in hist if m.step == count]
        out[version] = {"feedback": count, "logged": len(at_count) == 1,
                        "copies_at_step": len(at_count)}
    return out


def mlflow_outage(tracking: TrackingServer, workdir: Path, outage: float = 30,
                  after: float = 5, concurrency: int = 3) -> dict:
    """Stop the real tracking server for ``outage`` s under load; pending live metrics arrive.

    ``tracking`` serves the registry (see ``published``); it is running again afterwards.
    """
    db = sqlite_db(workdir)
    server = Gunicorn(workdir / "gunicorn", tracking.url, db, workers=2,
                      LIVE_METRICS_SECONDS=1, ALIAS_REFRESH_SECONDS=1).start()
    fault: dict = {}

    def outage_window(_tally):
        time.sleep(3)
        tracking.stop()
        stopped = time.monotonic()
        fault["health_during_outage"] = wait_until(
            lambda: server.health()["status"] == "degraded" and "degraded", 20)
        time.sleep(max(0.0, outage - (time.monotonic() - stopped)))
        tracking.start()
        fault["restarted_at"] = time.monotonic()
        fault["outage_measured_s"] = round(fault["restarted_at"] - stopped, 1)
        time.sleep(after)  # load goes on over the whole outage and a little after
        _tally.stop.set()

    try:
        log.info("load with an outage of %ss", outage)
        tally = load_mixed.run([server.url], CLIENT_KEY, outage + 600, concurrency,
                               during=outage_window)
        client = MlflowClient(tracking.url)
        synced = wait_until(lambda: all(v["logged"] for v in
                                        _live_steps(client, "churn", db).values()), 90, 1)
        recovered = time.monotonic() - fault.pop("restarted_at")
        steps = _live_steps(client, "churn", db)
    finally:
        server.stop()
    return {**load_mixed.summary(tally, tally.elapsed, load_mixed.stored(db, tally.tag)),
            "outage_s": outage, **fault, "live_metrics": steps,
            "live_metrics_synced": bool(synced),
            "live_metrics_synced_after_restart_s": round(recovered, 1)}


def registry_start(tracking: TrackingServer, workdir: Path, outage: float = 10,
                   deadline: float = 300) -> dict:
    """Start while the registry is down: up but not ready; ready once the registry returns.

    The state "while down" is read once *every* worker has reported its failed registry
    lookup (a worker still inside its first lookup reports no error yet), or at ``deadline``
    seconds; then the figures hold for all workers (any worker ready or not reporting the
    error shows).
    """
    tracking.stop()
    server = Gunicorn(workdir / "gunicorn", tracking.url, sqlite_db(workdir), workers=2,
                      STARTUP_WAIT_SECONDS=2, ALIAS_REFRESH_SECONDS=1)
    try:
        server.start(None)
        started = time.monotonic()
        wait_until(lambda: server.every_worker(lambda h: h.get("registry_error")), deadline, 0.5)
        time.sleep(max(0.0, outage - (time.monotonic() - started)))
        down = list(server.worker_healths().values())
        refused = requests.post(f"{server.url}/predict", json=load_mixed.RECORD,
                                headers={"X-API-Key": CLIENT_KEY}, timeout=10)
        tracking.start()
        back = time.monotonic()
        ready = wait_until(server.all_ready, 120, 0.2)
        recovered = time.monotonic() - back
        answer = requests.post(f"{server.url}/predict", json=load_mixed.RECORD,
                               headers={"X-API-Key": CLIENT_KEY}, timeout=10)
    finally:
        server.stop()
        if tracking.proc is None or tracking.proc.poll() is not None:
            tracking.start()
    statuses = sorted({h["status"] for h in down})
    return {"outage_s": outage, "workers_seen_while_down": len(down),
            "status_while_down": statuses[0] if len(statuses) == 1 else statuses,
            "ready_while_down": any(h["ready"] for h in down),
            "registry_error_reported": len(down) == server.workers and all(
                h.get("registry_error") for h in down),
            "predict_while_down": refused.status_code, "ready_after_return": bool(ready),
            "ready_after_return_s": round(recovered, 2),
            "predict_after_return": answer.status_code}
