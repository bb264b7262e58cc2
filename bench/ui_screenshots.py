"""Screenshots of the MLflow UI for docs/monitoring.md, taken from a real ``mlflow server``.

    python -m bench.ui_screenshots --workdir /tmp/caretflow-ui [--out docs/img]

1. A quick run, ``mlflow run . -e main`` (``profile=quick``, two versions), into
   ``WORKDIR/mlflow.db`` (``caretflow.launch.mlflow_run_main``); a store that already holds
   ``churn@champion`` is reused.
2. Traffic through an in-process server into ``WORKDIR/predictions.db``: labelled A/B
   traffic from churn rows, unlabelled traffic with ages moved up 15 years, a few records
   rejected at validation; one observer round (alerts); then the ``monitor`` step over the
   last hour.
3. ``mlflow server`` on that store (``caretflow.launch.MlflowServer``) and headless Chromium
   (``--virtual-time-budget``: the UI is a React app) saves into ``--out``:
   ``mlflow_model_version.png`` (the champion's version page with its model card),
   ``mlflow_preprocess_datasets.png`` (a preprocess run with its Datasets panel) and
   ``mlflow_monitor_run.png`` (the monitoring run's ``monitoring/report.html`` artifact).

Look at each PNG before committing it: a page caught before the UI finished loading shows a
spinner (raise ``--budget-ms``).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pandas as pd

from caretflow.data.drift_scenario import churn_records
from caretflow.launch import MlflowServer
from caretflow.paths import ROOT
from caretflow.pipeline_run import mlflow_run_main

log = logging.getLogger("bench.ui_screenshots")
VERSIONS = "v2_random_forest,v4_xgboost"
# No internet here: a UI request to an outside host would hang until its TCP timeout and
# virtual time would never run out, so every name but loopback fails at once.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


def build_store(workdir: Path) -> str:
    """The quick run's store in ``workdir`` (reused when it has a champion)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{workdir.resolve() / 'mlflow.db'}"
    if (workdir / "mlflow.db").exists():
        try:
            MlflowClient(uri).get_model_version_by_alias("churn", "champion")
            log.info("reusing %s", uri)
            return uri
        except MlflowException:
            pass
    log.info("quick run into %s (a few minutes)", uri)
    proc, seconds = mlflow_run_main(uri, "churn", "profile=quick", versions=VERSIONS)
    if proc.returncode != 0:
        raise SystemExit(f"mlflow run failed:\n{proc.stderr[-3000:]}")
    log.info("quick run: %.0f s", seconds)
    return uri


def traffic(uri: str, db: str) -> None:
    """A/B traffic with labels, shifted unlabelled traffic and rejections, then one round."""
    from app import create_app
    from app.observer import Observer

    key = secrets.token_hex(16)
    app = create_app({"API_KEYS": key, "ADMIN_API_KEYS": secrets.token_hex(16),
                      "PREDICTION_DB_URL": db, "MLFLOW_TRACKING_URI": uri,
                      "AB_WEIGHTS": "50,50", "OBSERVE_SECONDS": 3600})
    st = app.extensions["caretflow"]
    try:
        client, rows = app.test_client(), pd.read_csv(ROOT / "data" / "Churn_Modelling.csv")
        batches = [churn_records(rows.iloc[i:i + 100], True) for i in range(0, 900, 100)]
        batches += [churn_records(rows.iloc[i:i + 100], False, 15) for i in range(3000, 3600, 100)]
        bad = churn_records(rows.iloc[5000:5010], False)
        for i, rec in enumerate(bad):
            rec.update({"Age": 150} if i % 2 else {"Geography": "Mars"})
        for body in [*({"records": b, "enable_ab_testing": True} for b in batches),
                     {"records": bad}, {"records": bad[:3]}]:
            status = client.post("/predict", json=body, headers={"X-API-Key": key}).status_code
            if status not in (200, 422):
                raise SystemExit(f"/predict answered {status}")
        Observer(st).tick()
    finally:
        st.stop()


def shoot(chromium: str, url: str, path: Path, size: str, budget_ms: int) -> None:
    """One headless Chromium screenshot of ``url``."""
    subprocess.run([chromium, *FLAGS, f"--window-size={size}",
                    f"--virtual-time-budget={budget_ms}", f"--screenshot={path}", url],
                   capture_output=True, timeout=180, check=True)
    log.info("%s: %d bytes", path, path.stat().st_size)


def pages(uri: str, monitor_run_id: str) -> dict[str, tuple[str, str]]:
    """Screenshot file -> (UI route, window size)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    champion = client.get_model_version_by_alias("churn", "champion")
    pre_id = champion.tags["preprocess_run_id"]
    pre_exp = client.get_run(pre_id).info.experiment_id
    mon_exp = client.get_run(monitor_run_id).info.experiment_id
    return {
        "mlflow_model_version.png": (f"#/models/churn/versions/{champion.version}",
                                     "1400,1700"),
        "mlflow_preprocess_datasets.png": (f"#/experiments/{pre_exp}/runs/{pre_id}",
                                           "1400,1100"),
        "mlflow_monitor_run.png": (f"#/experiments/{mon_exp}/runs/{monitor_run_id}/artifacts/"
                                   "monitoring/report.html", "1700,1400"),
    }


def main() -> None:
    """CLI: build (or reuse) the store, monitor a window, screenshot the MLflow UI."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--budget-ms", type=int, default=60000,
                        help="Chromium's virtual time budget per page")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed: bash .ci/system-deps")
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    uri = build_store(args.workdir)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ.pop("MLFLOW_RUN_ID", None)
    db = f"sqlite:///{args.workdir.resolve() / 'predictions.db'}"
    traffic(uri, db)
    from steps.monitor import monitor

    run_id = monitor("churn", window_hours=1, prediction_db=db)["run_id"]
    with MlflowServer(args.workdir / "server", backend_uri=uri) as server:
        server.start(180)
        for name, (route, size) in pages(uri, run_id).items():
            shoot(chromium, f"{server.url}/{route}", args.out / name, size, args.budget_ms)
            print(f"{args.out / name}: {server.url}/{route}")  # noqa: T201 - what was taken


if __name__ == "__main__":
    main()
