"""In-process p50 of the fast path against the logged pipeline, for the champions users serve.

The full profile's champions are XGBoost (churn ``v4_xgboost``) and soft-voting blends
(``v1_auto_select``). This bench builds those families with the project's own build code
(``fit_version``: pipeline, out-of-fold calibration and threshold or interval, final fit) on
the whole training split: XGBoost at the largest point of the v4 grid (300 trees, depth 5),
GradientBoosting + LightGBM for churn and linear regression + gradient boosting for ratings,
each member with its library's defaults (PyCaret's). ``--tracking-uri`` with ``--model``
times registered versions instead. Each model answers real rows (``bench.payloads``) as
column arrays, one row and a 1000-row batch: the logged pipeline (``predict_details``)
and the verified fast path (``caretflow.fastpath.accelerate``) with 1 and 2 threads.

    python -m bench.fastpath_floor
    python -m bench.fastpath_floor --overrides "profile.max_rows=1500"   # a quick trial
    python -m bench.fastpath_floor --tracking-uri sqlite:////tmp/reg/mlflow.db \
        --model churn@champion --model ratings@champion
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

from bench import payloads
from bench.serve_floor import columns, time_call

log = logging.getLogger("bench.fastpath")
RESULTS = Path(__file__).parent / "results"
XGB_LARGEST = ["+model.params.n_estimators=300", "+model.params.max_depth=5",
               "+model.params.learning_rate=0.1"]


def champions() -> dict:
    """Name -> (data set, Hydra overrides, unfitted estimator or None for the version's)."""
    from lightgbm import LGBMClassifier
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    from caretflow.modelling.ensemble import soft_vote

    return {
        "churn v4_xgboost (300 trees, depth 5)": (
            "churn", ["version=v4_xgboost", "model.search=null", *XGB_LARGEST], None),
        "churn blend GradientBoosting + LightGBM": (
            "churn", ["version=v1_auto_select"],
            soft_vote([GradientBoostingClassifier(random_state=42),
                       LGBMClassifier(random_state=42, n_jobs=1, verbose=-1)],
                      "classification")),
        "ratings blend LinearRegression + GradientBoosting": (
            "ratings", ["version=v1_auto_select"],
            soft_vote([LinearRegression(), GradientBoostingRegressor(random_state=42)],
                      "regression")),
    }


def build(dataset: str, overrides: list[str], estimator):
    """A model fitted by ``fit_version`` on the quick profile's training split.

    All rows, unless ``overrides`` set ``profile.max_rows``.
    """
    from caretflow.config import compose
    from caretflow.data import tables as D
    from caretflow.modelling.build import fit_version

    cfg = compose([f"dataset={dataset}", "profile=quick", *overrides])
    _, train, _ = D.training_split(D.load_raw(cfg.dataset), cfg)
    X, y = train[D.feature_columns(cfg.dataset)], train[cfg.dataset.target]
    return fit_version(cfg, X, y, estimator).model


def registered(tracking_uri: str, names: list[str]) -> dict:
    """``name@alias`` -> (data set, loaded model) from a tracking store."""
    import mlflow

    from caretflow.registry import load_model

    mlflow.set_tracking_uri(tracking_uri)
    return {n: (n.split("@")[0], load_model(f"models:/{n}")) for n in names}


def timed(fn, seconds: float) -> dict:
    """``time_call``'s wall p50/p90, plus the mean CPU per call of the whole process."""
    start = time.process_time()
    out = time_call(fn, seconds)
    out["cpu_mean_ms"] = round((time.process_time() - start) * 1000 / (out["calls"] + 1), 3)
    return out


def floor(name: str, dataset: str, model, seconds: float) -> list[dict]:
    """p50 of the pipeline and the fast path on 1 and 1000 real rows of ``dataset``."""
    from caretflow.fastpath import accelerate

    fast = {t: accelerate(model, threads=t) for t in (1, 2)}
    kind = getattr(fast[1].pipeline, "kind", "none (the pipeline serves)")
    out = []
    for n in (1, 1000):
        X = columns(payloads.frame(n, seed=n, dataset=dataset))
        paths = {"pipeline": model, "fast path, 1 thread": fast[1]}
        if n > 1:
            paths["fast path, 2 threads"] = fast[2]
        for path, m in paths.items():
            row = {"model": name, "fast_form": kind, "rows": n, "path": path,
                   **timed(lambda m=m, X=X: m.predict_details(X), seconds)}
            log.info("%-50s %5d  %-22s p50 %8.3f ms  (cpu %.3f ms/call)", name, n, path,
                     row["p50_ms"], row["cpu_mean_ms"])
            out.append(row)
    return out


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="time registered models from this store")
    parser.add_argument("--model", action="append", default=[],
                        help="name@alias or name/version (with --tracking-uri; repeatable)")
    parser.add_argument("--overrides", default="", help="extra Hydra overrides for the builds")
    parser.add_argument("--seconds", type=float, default=2.0, help="timing budget per path")
    parser.add_argument("--out", type=Path, default=RESULTS / "fastpath_floor.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load_before = round(os.getloadavg()[0], 2)
    if args.tracking_uri:
        models = registered(args.tracking_uri, args.model or ["churn@champion"])
    else:
        models = {}
        for name, (dataset, overrides, estimator) in champions().items():
            log.info("building %s", name)
            extra = [*overrides, *args.overrides.split()]
            models[name] = (dataset, build(dataset, extra, estimator))
    rows = [r for name, (ds, m) in models.items() for r in floor(name, ds, m, args.seconds)]
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(),
               "load_average_1m": [load_before, round(os.getloadavg()[0], 2)]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    log.info("machine %s; wrote %s", machine, args.out)


if __name__ == "__main__":
    main()
