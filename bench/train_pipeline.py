"""Training benchmark: wall time per step and version, cached rerun, test quality.

Runs ``mlflow run . -e main`` twice per data set on a fresh SQLite store (the second run
must reuse every step), then reads per-step durations and test metrics back from MLflow.
Prints the figures and writes ``bench/results/train_<profile>.json``.

    python -m bench.train_pipeline --profile quick --datasets churn
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from caretflow.pipeline_run import mlflow_run_main

log = logging.getLogger("bench.train")
RESULTS = Path(__file__).parent / "results"
KEY_METRICS = {"classification": ["test_roc_auc", "test_f1", "test_precision", "test_recall"],
               "regression": ["test_rmse", "test_r2", "test_interval_coverage",
                              "test_rmse_over_noise_floor"]}


def step_durations(client: MlflowClient, dataset: str) -> list[dict]:
    """Seconds per step run (first execution of each), from MLflow's run times."""
    exp = client.get_experiment_by_name(f"caretflow-{dataset}")
    runs = client.search_runs([exp.experiment_id], "tags.`caretflow.step` != 'main'",
                              order_by=["attributes.start_time ASC"])
    return [{"step": r.data.tags.get("caretflow.step"),
             "version": r.data.tags.get("version_name", ""),
             "seconds": round((r.info.end_time - r.info.start_time) / 1000, 1)}
            for r in runs if r.info.end_time]


def quality(client: MlflowClient, dataset: str, task: str) -> list[dict]:
    """Test metrics of every registered version, with its aliases."""
    rows = []
    for mv in client.search_model_versions(f"name = '{dataset}'"):
        metrics = client.get_run(mv.run_id).data.metrics
        full = client.get_model_version(dataset, mv.version)
        rows.append({"version": mv.version, "version_name": mv.tags.get("version_name"),
                     "aliases": sorted(full.aliases),
                     **{k: round(metrics[k], 4) for k in KEY_METRICS[task] if k in metrics}})
    return sorted(rows, key=lambda r: int(r["version"]))


def bench_dataset(dataset: str, profile: str, extra: str, workdir: Path) -> dict:
    """Run, rerun and measure one data set."""
    uri = f"sqlite:///{workdir / dataset / 'mlflow.db'}"
    (workdir / dataset).mkdir(parents=True)
    overrides = f"profile={profile} {extra}".strip()
    proc, first = mlflow_run_main(uri, dataset=dataset, overrides=overrides)
    if proc.returncode != 0:
        raise RuntimeError(f"{dataset}: pipeline failed\n{proc.stderr[-3000:]}")
    proc, second = mlflow_run_main(uri, dataset=dataset, overrides=overrides)
    if proc.returncode != 0:
        raise RuntimeError(f"{dataset}: cached rerun failed\n{proc.stderr[-3000:]}")
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    task = "classification" if dataset == "churn" else "regression"
    pre = client.search_runs([client.get_experiment_by_name(f"caretflow-{dataset}").experiment_id],
                             "tags.`caretflow.step` = 'preprocess'")[0]
    return {"dataset": dataset, "profile": profile,
            "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "first_run_seconds": round(first, 1),
            "cached_rerun_seconds": round(second, 1),
            "cached_fraction": round(second / first, 3),
            "noise_floor_rmse": pre.data.metrics.get("test_noise_floor_rmse"),
            "steps": step_durations(client, dataset), "quality": quality(client, dataset, task)}


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="full", choices=["quick", "full"])
    parser.add_argument("--datasets", default="churn,ratings")
    parser.add_argument("--overrides", default="", help="extra Hydra overrides")
    parser.add_argument("--out", default=None, help="result JSON (default bench/results/...)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench_dataset(d, args.profile, args.overrides, Path(tmp))
                   for d in args.datasets.split(",")]
    out = Path(args.out) if args.out else RESULTS / f"train_{args.profile}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    for r in results:
        log.info("%s (%s): first run %.1fs, cached rerun %.1fs (%.1f%% of first)", r["dataset"],
                 r["profile"], r["first_run_seconds"], r["cached_rerun_seconds"],
                 100 * r["cached_fraction"])
        for s in r["steps"]:
            log.info("  %-10s %-18s %7.1fs", s["step"], s["version"], s["seconds"])
        if r["noise_floor_rmse"]:
            log.info("  generator noise floor RMSE (test): %.4f", r["noise_floor_rmse"])
        for q in r["quality"]:
            log.info("  %s", q)
    log.info("wrote %s", out)


if __name__ == "__main__":
    main()
