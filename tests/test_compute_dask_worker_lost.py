"""compute=dask: a worker SIGKILLed while search tasks run is survived, results unchanged.

Runs on the session ``dask_cluster`` (tests/dask_cluster.py): only the worker process is
killed, its nanny starts a fresh one, and the test waits for two workers again, so the
fixture is whole for the tests after it. The local reference is the same grid searched
sequentially in this process on the same split (no second train step).
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time

import mlflow
import pandas as pd
import pytest

from tests.conftest import TINY
from tests.test_compute_dask import _train

# A real grid through the project's search code (2 x 2 x 2 = 8 candidates x 2 folds).
GRID = ["profile.max_candidates=null", "model.search.space.max_depth=[2,3]",
        "model.search.space.learning_rate=[0.1]", "model.search.space.n_estimators=[20,40]"]


class WorkerKiller(threading.Thread):
    """Watches the scheduler; SIGKILLs one worker process while it holds a search task."""

    def __init__(self, address: str, timeout: float = 300):
        super().__init__(daemon=True)
        self.address, self.timeout = address, timeout
        self.victim: str | None = None
        self.killed_keys: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        from distributed import Client

        with Client(self.address, timeout="10s", set_as_default=False) as client:
            pids = client.run(os.getpid)
            self.victim = min(pids)
            deadline = time.monotonic() + self.timeout
            while not self.done.is_set() and time.monotonic() < deadline:
                keys = [str(k) for k in client.processing([self.victim]).get(self.victim, [])]
                if any("fit_predict" in k for k in keys):
                    os.kill(pids[self.victim], signal.SIGKILL)
                    self.killed_keys = keys
                    return
                time.sleep(0.01)


def _local_search(run_id: str):
    """The same grid, sequential in this process, on the split the cluster run trained on."""
    from mlflow.tracking import MlflowClient

    from caretflow.config import compose
    from caretflow.data import tables
    from caretflow.modelling.build import make_estimator, make_pipeline
    from caretflow.modelling.search import run_search
    from steps.preprocess import load_split

    cfg = compose([*TINY, "version=v4_xgboost", *GRID, "n_jobs=1"])
    train = load_split(MlflowClient().get_run(run_id).data.tags["preprocess_run_id"], "train")
    X, y = train[tables.feature_columns(cfg.dataset)], train[cfg.dataset.target]
    task = cfg.dataset.task
    pipeline = make_pipeline(cfg, make_estimator(cfg, task), task)
    _, best, table = run_search(cfg, pipeline, X, y, task, "local")
    return {f"best.{k}": str(v) for k, v in best.items()}, table


@pytest.mark.slow
def test_worker_killed_mid_search_is_survived(tracking_store, dask_cluster):
    from distributed import Client

    killer = WorkerKiller(dask_cluster.address)
    killer.start()
    try:
        on_cluster = _train("v4_xgboost", *GRID, "compute=dask",
                            f"compute.address={dask_cluster.address}")
        killer.done.set()
        with Client(dask_cluster.address, timeout="10s", set_as_default=False) as client:
            workers = set(client.scheduler_info()["workers"])
        best, table = _local_search(on_cluster["run_id"])  # while the nanny restarts it
    finally:
        killer.done.set()
        killer.join(timeout=30)
        dask_cluster.wait_for_workers(2, timeout=120)  # the fixture whole again
    assert killer.killed_keys, "no search task ran on the worker to kill"
    assert killer.victim not in workers  # the killed worker was lost, not paused
    assert len(table) == 8 and best
    assert on_cluster["best"] == best
    logged = pd.read_csv(io.StringIO(mlflow.artifacts.load_text(
        f"runs:/{on_cluster['run_id']}/search/results.csv")))
    assert logged["mean_test_score"].tolist() == pytest.approx(
        table["mean_test_score"].tolist(), abs=1e-12)  # every candidate's CV score
