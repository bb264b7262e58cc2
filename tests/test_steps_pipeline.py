"""Integration: the real pipeline through `mlflow run`, a real `mlflow server`, Hydra multirun."""

from __future__ import annotations

import subprocess

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from caretflow.config import ROOT
from caretflow.launch import BIN, MlflowServer, env_with
from caretflow.pipeline_run import mlflow_run_main
from tests.conftest import build_registry

pytestmark = pytest.mark.slow
VERSIONS = ["v1_auto_select", "v2_random_forest", "v3_rf_tuned", "v4_xgboost"]
TINY = "profile=quick profile.max_rows=1500"
CLS_METRICS = ["test_roc_auc", "test_f1", "test_accuracy", "test_precision", "test_recall",
               "test_tn", "test_fp", "test_fn", "test_tp"]


def _client(uri: str) -> MlflowClient:
    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri)


def _step_runs(client: MlflowClient, step: str) -> list:
    exp = client.get_experiment_by_name("caretflow-churn")
    return client.search_runs([exp.experiment_id], f"tags.`caretflow.step` = '{step}'")


def _check_registry(client: MlflowClient, versions: list[str]) -> None:
    model = client.get_registered_model("churn")
    for name in versions:
        mv = client.get_model_version_by_alias("churn", name)
        assert mv.tags["version_name"] == name
        assert mv.tags["dataset"] == "churn"
        assert mv.tags["preprocess_run_id"] and mv.tags["git_commit"]
        metrics = client.get_run(mv.run_id).data.metrics
        assert all(m in metrics for m in CLS_METRICS), metrics.keys()
        assert 0.5 < metrics["test_roc_auc"] <= 1.0
    assert "champion" in model.aliases
    champion = client.get_model_version_by_alias("churn", "champion")
    assert champion.tags["gate"] == "passed"


def test_quick_pipeline_through_mlflow_run_then_cached(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc, first = mlflow_run_main(uri, overrides=TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = _client(uri)
    _check_registry(client, VERSIONS)
    assert len(_step_runs(client, "train")) == 4

    proc, second = mlflow_run_main(uri, overrides=TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(_step_runs(client, "train")) == 4, "a cached step ran again"
    assert len(_step_runs(client, "preprocess")) == 1
    assert "reused run" in proc.stderr + proc.stdout
    assert second < first

    proc, _ = mlflow_run_main(uri, overrides=TINY, versions="v2_random_forest", force="true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(_step_runs(client, "train")) == 5


def test_bad_data_fails_clearly_and_registers_nothing(tmp_path):
    raw = pd.read_csv(ROOT / "data" / "Churn_Modelling.csv").head(300)
    raw.loc[5, "Geography"] = "Atlantis"
    bad = tmp_path / "bad.csv"
    raw.to_csv(bad, index=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc, _ = mlflow_run_main(
        uri, overrides=f"{TINY} dataset.source.path={bad} dataset.source.sha256_file=null")
    assert proc.returncode != 0
    assert "column 'Geography': unknown categories ['Atlantis']" in proc.stderr + proc.stdout
    client = _client(uri)
    assert client.search_registered_models() == []
    failed = _step_runs(client, "preprocess")
    assert [r.info.status for r in failed] == ["FAILED"]


def test_pipeline_against_real_mlflow_server(tmp_path):
    server = MlflowServer(tmp_path).start()
    try:
        proc, _ = mlflow_run_main(server.url, overrides=TINY,
                                  versions="v2_random_forest,v4_xgboost")
        assert proc.returncode == 0, proc.stderr[-3000:]
        client = _client(server.url)
        _check_registry(client, ["v2_random_forest", "v4_xgboost"])
        assert (tmp_path / "server-artifacts").exists()
    finally:
        server.stop()


def test_hydra_multirun_one_run_per_job(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run(
        [str(BIN / "python"), "-m", "steps.train", "-m", "model=knn,decision_tree",
         "profile=quick", "profile.max_rows=800", f"hydra.sweep.dir={tmp_path / 'multirun'}"],
        cwd=ROOT, env=env_with(uri), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = _client(uri)
    runs = _step_runs(client, "train")
    assert sorted(r.data.tags["version_name"] for r in runs) == ["decision_tree", "knn"]
    assert len({r.info.run_id for r in runs}) == 2
    for alias in ("knn", "decision_tree"):
        assert client.get_model_version_by_alias("churn", alias)


def test_ratings_pipeline_logs_noise_floor_and_intervals(tracking_store):
    info = build_registry("ratings", ["v2_random_forest", "v4_xgboost"])
    client = MlflowClient()
    floor = client.get_run(info["preprocess_run_id"]).data.metrics["test_noise_floor_rmse"]
    assert 0.3 < floor < 1.0
    for name in ("v2_random_forest", "v4_xgboost"):
        mv = client.get_model_version_by_alias("ratings", name)
        metrics = client.get_run(mv.run_id).data.metrics
        for key in ("test_rmse", "test_mae", "test_mse", "test_r2", "test_interval_coverage",
                    "test_rmse_over_noise_floor"):
            assert key in metrics
        assert metrics["test_rmse"] >= 0.9 * floor
    assert info["evaluation"]["champion"] is not None

