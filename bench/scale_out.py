"""Scale-out bench: batch scoring of a large file and a grid search, local against Dask.

(a) A churn-schema CSV of ``--rows`` rows (the real table resampled with noise, written to
a temporary folder, never kept) scored with ``churn@champion`` three ways:
``mlflow run . -e score`` locally (chunked), the same with ``compute=dask`` on a
2-worker loopback cluster, and ``mlflow models predict`` on the same model and file
(``--predict-rows`` first rows of it when smaller). Each: wall time of the command,
rows/s, and peak RSS of its process tree (the workers' too, for Dask), sampled every
0.2 s. (b) ``v4_xgboost``'s train step with a fixed grid, local against the cluster: wall
time, best parameters and every candidate's CV score (they must be equal).

    python -m bench.scale_out [--tracking-uri URI] [--rows 1000000] [--predict-rows N]
                              [--memory-rows 5000000] [--scoring-only]

Without ``--tracking-uri`` a quick-profile v4_xgboost registry is built (or reused) in
``--workdir``. Prints the figures and writes ``bench/results/scale_out.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench import machine
from bench.scale_out_measure import PeakRss, load
from caretflow.config import ROOT
from caretflow.launch import BIN, env_with

log = logging.getLogger("bench.scale_out")
RESULTS = Path(__file__).parent / "results"
SOURCE = Path("/work/shared/data/Churn_Modelling.csv")
GRID = ["profile=quick", "profile.max_candidates=null", "model.search.space.max_depth=[3,4,5]",
        "model.search.space.learning_rate=[0.1]", "model.search.space.n_estimators=[100,200]"]


def make_input(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` churn customers: the real table resampled, numbers jittered inside the schema."""
    source = SOURCE if SOURCE.exists() else ROOT / "data" / "Churn_Modelling.csv"
    raw = pd.read_csv(source).drop(columns=["Surname", "Exited"])  # no personal data
    rng = np.random.default_rng(seed)
    frame = raw.iloc[rng.integers(0, len(raw), rows)].reset_index(drop=True)
    jitter = {"CreditScore": (rng.normal(0, 15, rows).round(), 300, 900),
              "Age": (rng.integers(-2, 3, rows), 18, 100),
              "Tenure": (rng.integers(-1, 2, rows), 0, 10)}
    for name, (delta, low, high) in jitter.items():
        frame[name] = (frame[name] + delta).clip(low, high).astype(int)
    for name in ("Balance", "EstimatedSalary"):
        frame[name] = (frame[name] * rng.normal(1, 0.03, rows)).clip(0).round(2)
    frame["RowNumber"] = np.arange(1, rows + 1)
    frame["CustomerId"] = np.arange(rows) + 20_000_000
    frame.to_csv(path, index=False)


def measure(name: str, cmd: list[str], env: dict, rows: int, worker_pids=()) -> dict:
    """Run ``cmd``; its wall time, rows/s and peak RSS (MB) of its tree and the workers."""
    load_before = load()
    start = time.perf_counter()
    with subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc, \
            PeakRss(proc.pid, worker_pids) as peak:
        out, _ = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}):\n{out[-3000:]}")
    result = {"mode": name, "rows": rows, "seconds": round(seconds, 1),
              "rows_per_s": round(rows / seconds), "peak_rss_mb": peak.mb(),
              "load_before": load_before, "load_after": load()}
    step = re.search(r" in ([0-9.]+)s -> ", out)  # steps.score's own loop time, if it ran
    if step:
        result["step_loop_seconds"] = float(step.group(1))
    log.info("%s: %s", name, result)
    return result


def score_cmd(model: str, source: Path, output: Path, compute: str, overrides: str) -> list[str]:
    """``mlflow run . -e score`` with the pinned interpreter's environment."""
    return [str(BIN / "mlflow"), "run", str(ROOT), "-e", "score", "--env-manager", "local",
            "--experiment-name", "caretflow-churn", "-P", f"model={model}",
            "-P", f"input={source}", "-P", f"output={output}", "-P", "keep=CustomerId",
            "-P", f"compute={compute}", "-P", f"overrides={overrides}"]


def scoring(uri: str, client, tmp: Path, rows: int, predict_rows: int,
            memory_rows: int = 0) -> dict:
    """Part (a): score the generated file locally, on the cluster and with mlflow predict.

    With ``memory_rows`` a second file of that many rows is then scored locally only, for
    the peak memory against file size (``local_large``, ``peak_rss_ratio``).
    """
    from mlflow.tracking import MlflowClient

    source = tmp / "customers.csv"
    start = time.perf_counter()
    make_input(source, rows)
    log.info("generated %d rows (%.0f MB) in %.0f s", rows, source.stat().st_size / 1e6,
             time.perf_counter() - start)
    env = env_with(uri)
    address = client.scheduler.address
    workers = list(client.run(os.getpid).values())
    version = MlflowClient(uri).get_model_version_by_alias("churn", "champion").version
    out = {"model": f"churn/{version}", "input_mb": round(source.stat().st_size / 1e6)}
    out["local"] = measure("score local", score_cmd("churn@champion", source, tmp / "local",
                                                     "local", ""), env, rows)
    out["dask"] = measure("score dask", score_cmd(
        "churn@champion", source, tmp / "dask", "dask",
        f"compute.address={address} compute.blocksize=16MB"), env, rows, workers)
    local, dask = (pd.read_parquet(tmp / m) for m in ("local", "dask"))
    out["local_equals_dask"] = bool(local.equals(dask))
    out["columns"] = list(local.columns)
    predict_in = source
    if predict_rows < rows:
        predict_in = tmp / "customers_head.csv"
        pd.read_csv(source, nrows=predict_rows).to_csv(predict_in, index=False)
    predict = [str(BIN / "mlflow"), "models", "predict", "-m", f"models:/churn/{version}",
               "-i", str(predict_in), "-t", "csv", "-o", str(tmp / "predict.json"),
               "--env-manager", "local"]
    # mlflow's loader refuses skops models unless allowed (caretflow's own loader pins types)
    out["mlflow_predict"] = measure("mlflow models predict", predict, {
        **env, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}, min(rows, predict_rows))
    predictions = json.loads((tmp / "predict.json").read_text())["predictions"]
    out["mlflow_predict_equals_prediction"] = bool(
        np.array_equal(np.ravel(predictions), local["prediction"].to_numpy()[:len(predictions)]))
    if memory_rows:
        large = tmp / "customers_large.csv"
        source.unlink()
        make_input(large, memory_rows, seed=1)
        out["input_large_mb"] = round(large.stat().st_size / 1e6)
        out["local_large"] = measure("score local", score_cmd(
            "churn@champion", large, tmp / "local_large", "local", ""), env, memory_rows)
        out["peak_rss_ratio"] = round(out["local_large"]["peak_rss_mb"]["command"]
                                      / out["local"]["peak_rss_mb"]["command"], 3)
    log.info("scoring: %s", out)
    return out


def _train(uri: str, overrides: list[str]) -> dict:
    """One train step (a process); its wall time, best parameters and search table."""
    import mlflow
    from mlflow.tracking import MlflowClient

    cmd = [str(BIN / "python"), "-m", "steps.train", "version=v4_xgboost", *overrides]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env_with(uri), cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"train failed:\n{proc.stderr[-3000:]}")
    client = MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("caretflow-churn").experiment_id],
                             "tags.`caretflow.step` = 'train'", max_results=1,
                             order_by=["attributes.start_time DESC"])[0]
    mlflow.set_tracking_uri(uri)
    table = pd.read_csv(io.StringIO(mlflow.artifacts.load_text(
        f"runs:/{run.info.run_id}/search/results.csv")))
    return {"seconds": round(seconds, 1),
            "fit_seconds": round(run.data.metrics["train_seconds"], 1),
            "best": {k: v for k, v in run.data.params.items() if k.startswith("best.")},
            "cv_roc_auc": round(run.data.metrics["cv_roc_auc"], 6),
            "candidate_scores": [round(s, 6) for s in table["mean_test_score"]]}


def grid_search(client, tmp: Path) -> dict:
    """Part (b): the fixed v4 grid, local (n_jobs=2) against the cluster (2 workers)."""
    uri = f"sqlite:///{tmp / 'grid' / 'mlflow.db'}"
    (tmp / "grid").mkdir()
    pre = subprocess.run([str(BIN / "python"), "-m", "steps.preprocess", "profile=quick"],
                         env=env_with(uri), cwd=ROOT, capture_output=True, text=True)
    if pre.returncode != 0:
        raise RuntimeError(f"preprocess failed:\n{pre.stderr[-3000:]}")
    out = {"grid": GRID[2:], "load_before": load()}
    out["local"] = _train(uri, GRID)
    out["dask"] = _train(uri, [*GRID, "compute=dask",
                               f"compute.address={client.scheduler.address}"])
    out["load_after"] = load()
    out["equal"] = all(out["local"][k] == out["dask"][k]
                       for k in ("best", "cv_roc_auc", "candidate_scores"))
    log.info("grid: %s", out)
    return out


def main() -> None:
    """CLI: build or reuse the model, run both parts on one 2-worker cluster, print figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="store with churn@champion (default: build one)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/caretflow-bench/scale-out"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--predict-rows", type=int, default=1_000_000)
    parser.add_argument("--memory-rows", type=int, default=0,
                        help="also score a file of this many rows locally (peak memory)")
    parser.add_argument("--scoring-only", action="store_true",
                        help="part (a) only; the JSON keeps its earlier grid_search, marked so")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from distributed import Client, LocalCluster

    from bench.registry import ensure

    uri = args.tracking_uri or ensure(args.workdir / "registry", ["v4_xgboost"])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, \
            Client(cluster) as client, tempfile.TemporaryDirectory() as tmp:
        result = {"machine": machine.facts(), "cpus": os.cpu_count(), "workers": 2,
                  "scoring": scoring(uri, client, Path(tmp), args.rows, args.predict_rows,
                                     args.memory_rows)}
        RESULTS.mkdir(exist_ok=True)
        earlier = json.loads((RESULTS / "scale_out.json").read_text()) if (
            RESULTS / "scale_out.json").exists() else {}
        (RESULTS / "scale_out.json").write_text(json.dumps(result, indent=2))  # so far
        if args.scoring_only:
            result["grid_search"] = {**earlier.get("grid_search", {}),
                                     "from_an_earlier_run": True}
        else:
            result["grid_search"] = grid_search(client, Path(tmp))
    (RESULTS / "scale_out.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))  # noqa: T201 - the bench's figures go to stdout


if __name__ == "__main__":
    main()
