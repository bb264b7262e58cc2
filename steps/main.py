"""Step 0: chain preprocess -> train (per version) -> evaluate with ``mlflow.run``.

A step run is reused when a finished run of the same entry point has the same cache
key (parameters, resolved config, data, upstream runs, code); ``force=true`` reruns.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import time

import mlflow
from mlflow.tracking import MlflowClient

from caretflow import runtime, tracking
from caretflow.cache import evaluate_key, preprocess_key, train_key
from caretflow.config import ROOT, compose, split_overrides

log = logging.getLogger("caretflow.main")
ALL_VERSIONS = ("v1_auto_select", "v2_random_forest", "v3_rf_tuned", "v4_xgboost")


def _run_step(entry: str, params: dict, key: str, experiment_id: str, force: bool) -> str:
    """Run id of one step: a finished run with the same key, else a new ``mlflow.run``."""
    if not force:
        cached = tracking.find_cached_run(experiment_id, entry, key)
        if cached:
            log.info("%-28s reused run %s", _label(entry, params), cached)
            return cached
    log.info("%-28s running ...", _label(entry, params))
    start = time.perf_counter()
    submitted = mlflow.run(
        str(ROOT),
        entry_point=entry,
        parameters=params,
        env_manager="local",
        experiment_id=experiment_id,
        synchronous=True,
    )
    log.info(
        "%-28s finished run %s in %.1fs",
        _label(entry, params),
        submitted.run_id,
        time.perf_counter() - start,
    )
    return submitted.run_id


def _label(entry: str, params: dict) -> str:
    return f"{entry}[{params['version']}]" if "version" in params else entry


def run_pipeline(dataset: str, versions: list[str], overrides: list[str], force: bool) -> dict:
    """Run (or reuse) every step; return the run ids and the evaluation outcome."""
    unknown = [v for v in versions if not (ROOT / "conf" / "version" / f"{v}.yaml").exists()]
    if unknown:
        raise SystemExit(f"unknown versions {unknown}; known: {list(ALL_VERSIONS)}")
    experiment_id = tracking.setup(dataset)
    parent = (
        mlflow.active_run().info.run_id if mlflow.active_run() else os.environ.get("MLFLOW_RUN_ID")
    )
    if parent:
        os.environ[tracking.PARENT_ENV] = parent
    base = [f"dataset={dataset}", *overrides]
    joined = shlex.join(overrides)

    pre_key = preprocess_key(compose(base))
    pre_id = _run_step(
        "preprocess", {"dataset": dataset, "overrides": joined}, pre_key, experiment_id, force
    )
    train_ids = []
    for version in versions:
        cfg = compose([*base, f"version={version}", f"preprocess_run_id={pre_id}"])
        params = {
            "dataset": dataset,
            "version": version,
            "preprocess_run_id": pre_id,
            "overrides": joined,
        }
        run_id = _run_step("train", params, train_key(cfg, pre_id), experiment_id, force)
        train_ids.append(run_id)
    cfg = compose([*base, f"preprocess_run_id={pre_id}"])
    eval_params = {"dataset": dataset, "preprocess_run_id": pre_id, "overrides": joined}
    eval_id = _run_step(
        "evaluate", eval_params, evaluate_key(cfg, pre_id, train_ids), experiment_id, force
    )
    return {"preprocess": pre_id, "train": train_ids, "evaluate": eval_id}


def _summary(dataset: str, result: dict) -> None:
    client = MlflowClient()
    path = client.download_artifacts(result["evaluate"], "summary.csv")
    with open(path) as fh:
        log.info("summary (%s):\n%s", dataset, fh.read())


def main(argv: list[str] | None = None) -> None:
    """CLI: ``python -m steps.main --dataset churn --versions v2_random_forest --force false``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="churn")
    parser.add_argument("--versions", default=",".join(ALL_VERSIONS))
    parser.add_argument("--overrides", default="")
    parser.add_argument("--force", default="false")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    overrides = split_overrides([args.overrides]) if args.overrides else []
    force = args.force.strip().lower() in {"1", "true", "yes"}
    runtime.freeze_imports()
    start = time.perf_counter()
    result = run_pipeline(args.dataset, versions, overrides, force)
    if mlflow.active_run() or os.environ.get("MLFLOW_RUN_ID"):
        with mlflow.start_run():
            mlflow.set_tags(
                {
                    tracking.TAG_STEP: "main",
                    "preprocess_run_id": result["preprocess"],
                    "evaluate_run_id": result["evaluate"],
                }
            )
            mlflow.log_metric("pipeline_seconds", time.perf_counter() - start)
    _summary(args.dataset, result)
    log.info("pipeline finished in %.1fs", time.perf_counter() - start)


if __name__ == "__main__":
    main()
    runtime.freeze_before_exit()
