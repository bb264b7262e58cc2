"""compute=dask: training's joblib work on a real loopback cluster equals compute=local."""

from __future__ import annotations

import time

import pytest
from mlflow.tracking import MlflowClient

from caretflow import compute
from caretflow.config import compose
from caretflow.launch import free_port
from tests.conftest import TINY


def _train(version: str, *extra: str) -> dict:
    from steps.train import train

    result = train(compose([*TINY, f"version={version}", *extra]))
    params = MlflowClient().get_run(result["run_id"]).data.params
    result["best"] = {k: v for k, v in params.items() if k.startswith("best.")}
    return result


def _assert_same(local: dict, dask: dict) -> None:
    assert dask["best"] == local["best"]
    assert dask["cv_metrics"].keys() == local["cv_metrics"].keys()
    for name, value in local["cv_metrics"].items():
        assert dask["cv_metrics"][name] == pytest.approx(value, abs=1e-9), name


@pytest.mark.slow
def test_xgboost_search_on_cluster_equals_local(tracking_store, dask_cluster):
    local = _train("v4_xgboost")
    on_cluster = _train("v4_xgboost", "compute=dask", f"compute.address={dask_cluster.address}")
    assert local["best"], "the v4 search logged no best parameters"
    _assert_same(local, on_cluster)
    params = MlflowClient().get_run(on_cluster["run_id"]).data.params
    assert params["compute.name"] == "dask"


@pytest.mark.slow
def test_optuna_trials_on_cluster_equal_local(tracking_store, dask_cluster):
    optuna = ["model.search.method=optuna", "+model.search.parallel_trials=2",
              "profile.max_candidates=2"]
    local = _train("v4_xgboost", *optuna)
    on_cluster = _train("v4_xgboost", *optuna, "compute=dask",
                        f"compute.address={dask_cluster.address}")
    _assert_same(local, on_cluster)


@pytest.mark.slow
def test_automl_on_cluster_equals_local(tracking_store, dask_cluster):
    local = _train("v1_auto_select")
    on_cluster = _train("v1_auto_select", "compute=dask",
                        f"compute.address={dask_cluster.address}")
    runs = [MlflowClient().get_run(r["run_id"]).data for r in (local, on_cluster)]
    assert runs[1].tags["automl_winner"] == runs[0].tags["automl_winner"]
    assert runs[1].tags["automl_choice"] == runs[0].tags["automl_choice"]
    _assert_same(local, on_cluster)


def test_unreachable_scheduler_fails_fast_before_any_work(tracking_store):
    address = f"tcp://127.0.0.1:{free_port()}"
    cfg = compose([*TINY, "version=v4_xgboost", "compute=dask", f"compute.address={address}",
                   "compute.connect_timeout=2"])
    from steps.train import train

    start = time.perf_counter()
    with pytest.raises(compute.ComputeError, match=f"{address} is unreachable"):
        train(cfg)
    assert time.perf_counter() - start < 30
    client = MlflowClient(tracking_uri=tracking_store)
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert client.search_runs(experiments) == []  # not even a preprocess run


def test_dask_without_an_address_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    cfg = compose(["compute=dask"])
    with pytest.raises(compute.ComputeError, match="DASK_SCHEDULER_ADDRESS"), \
            compute.session(cfg):
        pass


def test_address_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.1.2.3:8786")
    assert compose(["compute=dask"]).compute.address == "tcp://10.1.2.3:8786"
