"""The monitor step over a prediction log written by a real in-process app (A/B traffic with
true churn labels, then unlabelled traffic with older customers), into a real MLflow run;
the report rendered by headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from app.observer import Observer
from caretflow.data.drift_scenario import churn_records
from caretflow.paths import ROOT
from steps.monitor import monitor
from tests.app_helpers import headers, running_app

ROWS = pd.read_csv(ROOT / "data" / "Churn_Modelling.csv")
SECTIONS = ("summary", "drift", "live-metrics", "estimated-metrics", "ab-test", "alerts")


def _records(start: int, n: int, labelled: bool, age_shift: int = 0) -> list[dict]:
    return churn_records(ROWS.iloc[start:start + n], labelled, age_shift)


@pytest.fixture(scope="module")
def monitored(tiny_registry, tmp_path_factory):
    """Traffic through a real app, then one monitor window over its log."""
    tmp = tmp_path_factory.mktemp("monitor")
    ctx = running_app(tiny_registry, tmp, AB_WEIGHTS="50,50", OBSERVE_SECONDS=3600)
    with ctx as app:
        client = app.test_client()
        batches = [_records(i, 100, True) for i in range(0, 900, 100)]
        batches += [_records(i, 100, False, age_shift=15) for i in range(3000, 3600, 100)]
        for batch in batches:
            r = client.post("/predict", json={"records": batch, "enable_ab_testing": True},
                            headers=headers())
            assert r.status_code == 200, r.get_data(as_text=True)
        Observer(app.extensions["caretflow"]).tick()  # alert rows, as the server writes them
        uri, db = ctx.uri, app.extensions["caretflow"].settings.PREDICTION_DB_URL
    saved = mlflow.get_tracking_uri()
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.delenv("MLFLOW_RUN_ID", raising=False)
    try:
        end = time.time() + 1
        first = monitor("churn", window_hours=1, prediction_db=db, end=end)
        second = monitor("churn", window_hours=1, prediction_db=db, end=end + 60)
        yield {"first": first, "second": second, "uri": uri, "tmp": tmp}
    finally:
        mp.undo()
        mlflow.set_tracking_uri(saved)


@pytest.mark.slow
def test_monitor_logs_one_run_per_model_and_window_with_metrics_and_artifacts(monitored):
    first, second = monitored["first"], monitored["second"]
    assert first["run_id"] == second["run_id"]  # the next window extends the same run
    client = MlflowClient(monitored["uri"])
    run = client.get_run(first["run_id"])
    assert run.data.tags["caretflow.monitor"] == "1"
    assert client.get_experiment(run.info.experiment_id).name == "caretflow-churn"
    rep = first["report"]
    assert len(rep["versions"]) == 2 and rep["task"] == "classification"
    for v, r in rep["versions"].items():
        assert r["labels"] > 300 and r["rows"] > 600
        assert {c for c, d in r["drift"].items() if d["flagged"]} == {"Age"}, r["drift"]
        live, est = r["live"]["roc_auc"], r["estimated"]["roc_auc"]
        assert live["ci_low"] < live["value"] < live["ci_high"]
        assert 0.6 < est <= 1.0 and r["prediction_drift"]["reference"].startswith("the held-out")
        history = client.get_metric_history(run.info.run_id, f"v{v}.estimated_roc_auc")
        assert sorted(m.step for m in history) == [first["step"], second["step"]]
        assert second["step"] - first["step"] == 1
        assert client.get_metric_history(run.info.run_id, f"v{v}.live_roc_auc_ci_low")
        assert client.get_metric_history(run.info.run_id, f"v{v}.psi.Age")[0].value > 0.1
    assert rep["ab"]["decision"] in ("promote_challenger", "keep_champion", "insufficient_data")
    assert "ab.keep_champion" in run.data.metrics
    names = {f.path for f in client.list_artifacts(run.info.run_id, "monitoring")}
    assert "monitoring/report.html" in names and "monitoring/ab.png" in names
    assert {f"monitoring/drift_v{v}.png" for v in rep["versions"]} <= names


@pytest.mark.slow
def test_evaluate_logged_calibration_of_every_classification_version(monitored):
    client = MlflowClient(monitored["uri"])
    for mv in client.search_model_versions("name = 'churn'"):
        metrics = client.get_run(mv.run_id).data.metrics
        assert 0 < metrics["test_brier"] < 0.25 and 0 <= metrics["test_ece"] < 0.2, metrics
        assert "test/reliability.png" in {f.path for f in client.list_artifacts(mv.run_id,
                                                                                 "test")}


@pytest.mark.slow
def test_report_renders_every_section_in_headless_chromium(monitored):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("CHROMIUM IS NOT INSTALLED (apt-get install -y chromium, or make "
                    "system-deps): the rendered report is not checked")
    client = MlflowClient(monitored["uri"])
    path = client.download_artifacts(monitored["second"]["run_id"], "monitoring/report.html",
                                     str(monitored["tmp"]))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", f"file://{path}"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    for section in SECTIONS:
        assert f'<section id="{section}">' in dom, section
    versions = monitored["second"]["report"]["versions"]
    assert dom.count("<img") >= 3 * len(versions) + 1
    assert "estimated" in dom and "no concept drift" in dom
    shot = Path(monitored["tmp"]) / "monitor_report.png"  # never into the checkout
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,1600",
                    f"file://{path}"], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000
