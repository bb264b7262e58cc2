"""One registered name, one contract: train refuses a version of another task or schema."""

from __future__ import annotations

import subprocess

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.dummy import DummyClassifier

from caretflow import registry
from caretflow.config import ROOT, compose
from caretflow.inference.contract import ContractError
from caretflow.launch import BIN, env_with
from tests.conftest import TINY, build_registry


def _legacy_version(name: str, metadata: dict | None = None) -> None:
    """A version as an older caretflow registered it: no task / schema_digest tags."""
    X = pd.DataFrame({"a": np.arange(10.0)})
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            DummyClassifier().fit(X, np.arange(10) % 2),
            name="model",
            registered_model_name=name,
            metadata=metadata,
            pip_requirements=["scikit-learn"],
        )


@pytest.mark.slow
def test_legacy_versions_are_read_from_mlmodel_metadata_or_skipped(tracking_store, caplog):
    mlflow.set_tracking_uri(tracking_store)
    mlflow.set_experiment("legacy-versions")  # not an experiment id left by another store
    new = {"task": "classification", "schema_digest": "abc"}
    _legacy_version("legacy")  # no contract anywhere: skipped with a warning
    registry.check_contract("legacy", new)
    assert "states no contract (legacy); not compared" in caplog.text
    _legacy_version("legacy", {"caretflow": {"task": "regression", "schema_digest": "abc"}})
    with pytest.raises(ContractError, match=r"version 2 \(\?\): task 'classification' vs"):
        registry.check_contract("legacy", new)
    registry.check_contract("legacy", {"task": "regression", "schema_digest": "abc"})


def _versions(client: MlflowClient, name: str) -> list[str]:
    return sorted(str(mv.version) for mv in client.search_model_versions(f"name = '{name}'"))


@pytest.mark.slow
def test_reframed_task_needs_its_own_registered_name(tracking_store):
    from steps.train import train

    first = train(compose(["dataset=churn", *TINY, "version=v2_random_forest"]))
    client = MlflowClient(tracking_store)
    exp = client.get_experiment_by_name("caretflow-churn").experiment_id
    runs_before = len(client.search_runs([exp]))

    # the README's regression reframing, under the same name: refused before anything runs
    proc = subprocess.run(
        [
            str(BIN / "python"),
            "-m",
            "steps.train",
            "dataset.task=regression",
            "version=v2_random_forest",
            *TINY,
        ],
        cwd=ROOT,
        env=env_with(tracking_store),
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "registered model 'churn' holds another task or input schema" in out, out[-3000:]
    assert "version 1 (v2_random_forest): task 'regression' vs 'classification'" in out
    assert "registry.name=churn_regression" in out
    assert "Traceback" not in out
    assert _versions(client, "churn") == ["1"]
    assert str(client.get_model_version_by_alias("churn", "v2_random_forest").version) == "1"
    assert len(client.search_runs([exp])) == runs_before  # no train (or preprocess) run
    assert [m.name for m in client.search_registered_models()] == ["churn"]

    # under its own name it trains, registers and is evaluated under that name
    info = build_registry(
        "churn",
        ["v2_random_forest"],
        extra=["dataset.task=regression", "registry.name=churn_regression"],
    )
    mv = client.get_model_version_by_alias("churn_regression", "v2_random_forest")
    assert (mv.tags["task"], mv.tags["dataset"]) == ("regression", "churn")
    contract = mlflow.models.get_model_info(f"models:/churn_regression/{mv.version}").metadata
    assert contract["caretflow"]["dataset"] == "churn_regression"
    assert contract["caretflow"]["task"] == "regression"
    metrics = client.get_run(mv.run_id).data.metrics
    assert "test_r2" in metrics and "test_rmse" in metrics
    assert info["evaluation"]["table"]["version_name"].tolist() == ["v2_random_forest"]
    champion = client.get_model_version_by_alias("churn_regression", "champion")
    assert str(champion.version) == str(mv.version)
    assert _versions(client, "churn") == ["1"], "the classification name was touched"
    assert first["version"] == "1"
