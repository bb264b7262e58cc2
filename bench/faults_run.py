"""Fault scenarios against real processes, each returning its figures.

    python -m bench.faults_run sigkill --seconds 30
    python -m bench.faults_run mlflow_outage --outage 30
    python -m bench.faults_run registry_start --outage 20
    python -m bench.faults_run load --seconds 60

Each reads the registry at ``--tracking-uri`` (default: the repo's SQLite store, copied to
a temporary directory first) and writes ``bench/results/reliability/<scenario>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import tempfile
import time
from pathlib import Path

import requests
from mlflow.tracking import MlflowClient

from bench import load_mixed
from bench.faults_env import CLIENT_KEY, Gunicorn
from bench.faults_publish import publish as publish_registry
from caretflow.launch import ROOT, copy_sqlite_store, wait_until
from caretflow.launch import MlflowServer as TrackingServer

log = logging.getLogger("bench.faults_run")
RESULTS = ROOT / "bench" / "results" / "reliability"


def _sqlite_db(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'predictions.db'}"


def load(registry_uri: str, workdir: Path, seconds: float = 60, concurrency: int = 4,
         workers: int = 2) -> dict:
    """Mixed /predict + /feedback for ``seconds``; exact rows afterwards."""
    db = _sqlite_db(workdir)
    server = Gunicorn(workdir / "gunicorn", registry_uri, db, workers=workers).start()
    try:
        tally = load_mixed.run([server.url], CLIENT_KEY, seconds, concurrency)
    finally:
        server.stop()
    return load_mixed.summary(tally, seconds, load_mixed.stored(db, tally.tag))


def sigkill(registry_uri: str, workdir: Path, seconds: float = 20, kill_after: float = 5,
            concurrency: int = 4) -> dict:
    """SIGKILL one of two workers under load; gunicorn replaces it; no feedback is lost."""
    db = _sqlite_db(workdir)
    server = Gunicorn(workdir / "gunicorn", registry_uri, db, workers=2).start()
    wait_until(lambda: len(server.worker_pids()) == 2, 60)
    fault: dict = {}

    def kill(_tally):
        time.sleep(kill_after)
        before = server.worker_pids()
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        back = wait_until(lambda: len(set(server.worker_pids()) - set(before)) == 1
                          and len(server.worker_pids()) == 2, 60, 0.05)
        replaced = time.monotonic() - killed_at if back else None
        ready = wait_until(lambda: _all_workers_ready(server), 60, 0.1)
        fault.update(killed_pid=victim, worker_replaced_s=round(replaced or -1, 2),
                     serving_again_s=round(time.monotonic() - killed_at, 2) if ready else None)

    try:
        tally = load_mixed.run([server.url], CLIENT_KEY, seconds, concurrency, during=kill)
    finally:
        server.stop()
    return {**load_mixed.summary(tally, seconds, load_mixed.stored(db, tally.tag)), **fault}


def _all_workers_ready(server: Gunicorn) -> bool:
    seen = {}
    for _ in range(12):
        body = server.health()
        seen[body["worker_pid"]] = body["ready"]
    return len(seen) == 2 and all(seen.values())


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
    db = _sqlite_db(workdir)
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


def registry_start(tracking: TrackingServer, workdir: Path, outage: float = 10) -> dict:
    """Start while the registry is down: up but not ready; ready once the registry returns."""
    tracking.stop()
    server = Gunicorn(workdir / "gunicorn", tracking.url, _sqlite_db(workdir), workers=2,
                      STARTUP_WAIT_SECONDS=2, ALIAS_REFRESH_SECONDS=1)
    try:
        server.start(None)
        started = time.monotonic()
        wait_until(lambda: server.health().get("registry_error"), 60)
        time.sleep(max(0.0, outage - (time.monotonic() - started)))
        down = server.health()
        refused = requests.post(f"{server.url}/predict", json=load_mixed.RECORD,
                                headers={"X-API-Key": CLIENT_KEY}, timeout=10)
        tracking.start()
        back = time.monotonic()
        ready = wait_until(lambda: _all_workers_ready(server), 120, 0.2)
        recovered = time.monotonic() - back
        answer = requests.post(f"{server.url}/predict", json=load_mixed.RECORD,
                               headers={"X-API-Key": CLIENT_KEY}, timeout=10)
    finally:
        server.stop()
        if tracking.proc is None or tracking.proc.poll() is not None:
            tracking.start()
    return {"outage_s": outage, "status_while_down": down["status"],
            "ready_while_down": down["ready"], "registry_error_reported": bool(
                down.get("registry_error")), "predict_while_down": refused.status_code,
            "ready_after_return": bool(ready), "ready_after_return_s": round(recovered, 2),
            "predict_after_return": answer.status_code}


@contextlib.contextmanager
def published(registry_uri: str, workdir: Path, backend_uri: str | None = None):
    """A running ``mlflow server`` holding a copy of the registry at ``registry_uri``."""
    tracking = TrackingServer(workdir / "mlflow", backend_uri).start()
    try:
        publish_registry(registry_uri, tracking.url)
        log.info("registry published to %s", tracking.url)
        yield tracking
    finally:
        tracking.stop()


SCENARIOS = {"load": load, "sigkill": sigkill, "mlflow_outage": mlflow_outage,
             "registry_start": registry_start}


def main() -> None:
    """CLI: run one scenario, print and save its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--tracking-uri", default=os.environ.get(
        "MLFLOW_TRACKING_URI", f"sqlite:///{ROOT / 'mlflow.db'}"))
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--outage", type=float)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    kwargs = {k: v for k, v in (("seconds", args.seconds), ("outage", args.outage)) if v}
    if args.scenario == "mlflow_outage":
        kwargs.pop("seconds", None)  # the load lasts as long as the outage (+5 s)
    with tempfile.TemporaryDirectory(prefix="caretflow-faults-") as tmp:
        uri = args.tracking_uri
        if uri.startswith("sqlite:///"):
            uri = copy_sqlite_store(uri, Path(tmp) / "registry")
        if args.scenario in ("load", "sigkill"):
            result = SCENARIOS[args.scenario](uri, Path(tmp), **kwargs)
        else:
            with published(uri, Path(tmp)) as tracking:
                result = SCENARIOS[args.scenario](tracking, Path(tmp), **kwargs)
    result = {"scenario": args.scenario, "measured_at": time.strftime("%Y-%m-%d %H:%M"),
              **result}
    out = args.out or RESULTS / f"{args.scenario}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    log.info(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
