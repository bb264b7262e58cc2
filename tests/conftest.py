"""Shared fixtures: the real composed config, a tiny real registry (temporary SQLite store)
and in-process apps over private copies of it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from caretflow.config import ROOT, compose
from tests.app_helpers import running_app

# Steps started by `mlflow run` call `python`: make it this interpreter.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")

TINY = ["profile=quick", "profile.max_rows=1500"]


@pytest.fixture
def cfg():
    """The real churn config, quick profile."""
    return compose(["profile=quick"])


@pytest.fixture
def tracking_store(tmp_path, monkeypatch):
    """A fresh SQLite tracking store for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    return uri


def build_registry(dataset: str, versions: list[str], extra: list[str] = ()) -> dict:
    """Train ``versions`` of ``dataset`` in-process on tiny data, then evaluate."""
    from steps.evaluate import evaluate
    from steps.train import train

    base = [f"dataset={dataset}", *TINY, *extra]
    results = {v: train(compose([*base, f"version={v}"])) for v in versions}
    pre_id = _preprocess_id(results)
    outcome = evaluate(compose([*base, f"preprocess_run_id={pre_id}"]))
    return {"trained": results, "evaluation": outcome, "preprocess_run_id": pre_id}


def _preprocess_id(results: dict) -> str:
    from mlflow.tracking import MlflowClient

    run_id = next(iter(results.values()))["run_id"]
    return MlflowClient().get_run(run_id).data.tags["preprocess_run_id"]


def _registry_in(root: Path, dataset: str, versions: list[str]) -> dict:
    """``build_registry`` on a new SQLite store in ``root``; the environment restored after."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        info = build_registry(dataset, versions)
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    return {"uri": uri, "root": root, "repo": ROOT, **info}


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory):
    """Session registry: churn v2_random_forest + v4_xgboost with champion and challenger."""
    return _registry_in(tmp_path_factory.mktemp("registry"), "churn",
                        ["v2_random_forest", "v4_xgboost"])


@pytest.fixture(scope="session")
def ratings_uri(tmp_path_factory):
    """A ratings registry (v2_random_forest, champion) on its own SQLite store."""
    return _registry_in(tmp_path_factory.mktemp("ratings"), "ratings", ["v2_random_forest"])["uri"]


@pytest.fixture(scope="module")
def ratings_app(ratings_uri, tmp_path_factory):
    """One in-process app per test module over the ratings registry."""
    with running_app({}, tmp_path_factory.mktemp("ratings_app"), MLFLOW_TRACKING_URI=ratings_uri,
                     MODEL_NAME="ratings") as app:
        yield app


@pytest.fixture(scope="module")
def shared_app(tiny_registry, tmp_path_factory):
    """One app per test module (for tests that do not move aliases)."""
    with running_app(tiny_registry, tmp_path_factory.mktemp("app")) as app:
        yield app


@pytest.fixture
def client(shared_app):
    """A Flask test client of the module's shared app."""
    return shared_app.test_client()


@pytest.fixture
def fresh_app(tiny_registry, tmp_path):
    """A private app for one test (its registry copy may be changed freely)."""
    with running_app(tiny_registry, tmp_path) as app:
        yield app


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    """A real Dask scheduler and two single-threaded workers on loopback (tests/dask_cluster)."""
    from tests.dask_cluster import DaskCluster

    cluster = DaskCluster(tmp_path_factory.mktemp("dask")).start()
    yield cluster
    cluster.stop()
