"""Recommender quality: the whole pipeline against Surprise and myFM baselines, one split.

For each data set, on a fresh SQLite store: runs ``mlflow run . -e main`` (all four
versions, default profile) and times it, reads the champion, its held-out test RMSE and
interval coverage, and ``v1_auto_select``'s train time against its budget; then fits, on
the same training split (the preprocess run's ``train`` / ``test`` artifacts), Surprise's
BaselineOnly, SVD and SVD++ with the library's defaults and an ids-only Bayesian FM
(myFM, rank 10, 200 Gibbs iterations), and scores them on the same test rows. The noise
floor is the RMSE of the generator's exact expected rating on those rows.

- ``movielens_synth``: ``caretflow.data.movielens_generator`` (ml-100k's size and shape)
  written as ml-100k files and read through the ``movielens`` adapter;
- ``ratings``: the ratings generator (``conf/dataset/ratings.yaml``).

Prints the figures and the targets, writes ``bench/results/recommender_quality.json``.

    python -m bench.recommender_quality [--datasets movielens_synth,ratings] [--overrides ...]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from bench.train_pipeline import quality, step_durations
from caretflow import tracking
from caretflow.data.movielens_generator import read_truth, write_movielens
from caretflow.pipeline_run import mlflow_run_main

log = logging.getLogger("bench.recommender_quality")
RESULTS = Path(__file__).parent / "results" / "recommender_quality.json"
DATASETS = {"movielens_synth": "movielens", "ratings": "ratings"}
SEED = 42
# First words of v1_auto_select's selection log lines (besides "[i/n] ..." and "blend_...").
PROGRESS = {"features", "auto-select", "dropped", "no", "chose", "keeping"}


def _rmse(y, pred) -> float:
    return float(np.sqrt(np.mean((np.asarray(y, float) - np.asarray(pred, float)) ** 2)))


def surprise_baselines(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    """Surprise BaselineOnly, SVD, SVD++ with the library's defaults: test RMSE, fit seconds."""
    from surprise import SVD, BaselineOnly, Dataset, Reader, SVDpp

    cols = ["user_id", "item_id", "rating"]
    trainset = Dataset.load_from_df(train[cols], Reader(rating_scale=(1, 5))).build_full_trainset()
    out = {}
    for name, algo in (("surprise_baseline_only", BaselineOnly(verbose=False)),
                       ("surprise_svd", SVD(random_state=SEED)),
                       ("surprise_svdpp", SVDpp(random_state=SEED))):
        start = time.perf_counter()
        algo.fit(trainset)
        seconds = time.perf_counter() - start
        pred = [algo.predict(u, i).est for u, i in zip(test["user_id"], test["item_id"],
                                                       strict=True)]
        out[name] = {"test_rmse": _rmse(test["rating"], pred), "fit_seconds": round(seconds, 1)}
    return out


def fm_ids_only(train: pd.DataFrame, test: pd.DataFrame, rank: int = 10) -> dict:
    """Bayesian FM (myFM) on user and item one-hots only (unseen ids: all-zero rows)."""
    import myfm
    from scipy import sparse

    def one_hot(frame: pd.DataFrame) -> sparse.csr_matrix:
        blocks = []
        for col in ("user_id", "item_id"):
            known = {k: j for j, k in enumerate(np.unique(train[col]))}
            idx = np.array([known.get(k, -1) for k in frame[col]])
            rows = np.flatnonzero(idx >= 0)
            blocks.append(sparse.csr_matrix((np.ones(len(rows)), (rows, idx[rows])),
                                            shape=(len(frame), len(known))))
        return sparse.hstack(blocks, format="csr")

    start = time.perf_counter()
    fm = myfm.MyFMRegressor(rank=rank, random_seed=SEED)
    with contextlib.redirect_stderr(io.StringIO()):  # myFM's progress bar
        fm.fit(one_hot(train), train["rating"].to_numpy(float), n_iter=200, n_kept_samples=150)
    seconds = time.perf_counter() - start
    pred = np.clip(fm.predict(one_hot(test)), 1, 5)
    return {"myfm_ids_only": {"test_rmse": _rmse(test["rating"], pred),
                              "fit_seconds": round(seconds, 1)}}


def _champion(client: MlflowClient, name: str) -> dict:
    mv = client.get_model_version_by_alias(name, "champion")
    metrics = client.get_run(mv.run_id).data.metrics
    return {"version": mv.version, "version_name": mv.tags.get("version_name"),
            "estimator": mv.tags.get("estimator"), "test_rmse": metrics["test_rmse"],
            "test_interval_coverage": metrics.get("test_interval_coverage")}


def _v1_budget(client: MlflowClient, experiment_id: str) -> float | None:
    runs = client.search_runs([experiment_id], "tags.version_name = 'v1_auto_select'")
    params = runs[0].data.params if runs else {}
    caps = [params.get(k) for k in ("model.budget_minutes", "profile.automl.budget_minutes")]
    caps = [float(c) for c in caps if c not in (None, "None", "null", "0")]
    return min(caps) if caps else None


def bench_dataset(key: str, overrides: str, workdir: Path) -> dict:
    """Pipeline, baselines and floor for one data set."""
    name, root = DATASETS[key], workdir / key
    root.mkdir(parents=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    truth = None
    if key == "movielens_synth":
        files = write_movielens(root / "ml-synth", seed=11)
        overrides = f"dataset.path={files} {overrides}".strip()
        truth = read_truth(files)
    proc, seconds = mlflow_run_main(uri, dataset=name, overrides=overrides, echo=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{key}: pipeline failed\n{proc.stderr[-3000:]}")
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(f"caretflow-{name}")
    pre = client.search_runs([exp.experiment_id], "tags.`caretflow.step` = 'preprocess'")[0]
    from steps.preprocess import load_split

    train, test = load_split(pre.info.run_id, "train"), load_split(pre.info.run_id, "test")
    if truth is not None:
        oracle = test.merge(truth, on=["user_id", "item_id"], how="left")["expected_rating"]
        floor = _rmse(test["rating"], oracle)
    else:
        floor = pre.data.metrics["test_noise_floor_rmse"]
    steps = step_durations(client, name)
    v1 = [s["seconds"] for s in steps if s["version"] == "v1_auto_select"]
    champion = _champion(client, name)
    log.info("%s: pipeline %.1fs, champion %s", key, seconds, champion)
    baselines = {**surprise_baselines(train, test), **fm_ids_only(train, test)}
    messages = [line.split("v1_auto_select: ", 1)[1] for line in
                (proc.stdout + proc.stderr).splitlines() if "v1_auto_select: " in line]
    progress = [m for m in messages
                if m.startswith(("[", "blend_")) or m.split(" ", 1)[0] in PROGRESS]
    return {"dataset": key, "registered_name": name, "overrides": overrides,
            "v1_progress": progress,
            "rows": {"train": len(train), "test": len(test)},
            "pipeline_seconds": round(seconds, 1), "v1_train_seconds": v1[0] if v1 else None,
            "v1_budget_minutes": _v1_budget(client, exp.experiment_id),
            "noise_floor_rmse": floor, "champion": champion,
            "champion_over_floor": champion["test_rmse"] / floor, "baselines": baselines,
            "steps": steps, "versions": quality(client, name, "regression")}


def targets(r: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for one data set's result."""
    champ, base = r["champion"]["test_rmse"], r["baselines"]
    best_base = min(base, key=lambda k: base[k]["test_rmse"])
    out = []
    if r["dataset"] == "movielens_synth":
        budget = r["v1_budget_minutes"]
        out.append(("full pipeline (4 versions) <= 600 s", f"{r['pipeline_seconds']:.0f} s",
                    r["pipeline_seconds"] <= 600))
        out.append((f"v1_auto_select train inside its budget ({budget} min)",
                    f"{r['v1_train_seconds']:.0f} s",
                    budget is not None and r["v1_train_seconds"] <= budget * 60))
        order = [base[k]["test_rmse"] for k in
                 ("surprise_svdpp", "surprise_svd", "surprise_baseline_only")]
        out.append(("ranking SVD++ < SVD < BaselineOnly (RMSE)",
                    " < ".join(f"{v:.4f}" for v in order), order[0] < order[1] < order[2]))
    out.append(("champion RMSE below every baseline",
                f"{champ:.4f} vs best baseline {best_base} {base[best_base]['test_rmse']:.4f}",
                all(champ < b["test_rmse"] for b in base.values())))
    if r["dataset"] == "ratings":
        out.append(("champion within 5 % of the noise floor", f"{r['champion_over_floor']:.4f}x",
                    r["champion_over_floor"] <= 1.05))
    cover = r["champion"]["test_interval_coverage"]
    out.append(("interval coverage 88-92 % at 90 %", f"{100 * cover:.1f} %",
                0.88 <= cover <= 0.92))
    return out


def report(results: list[dict]) -> None:
    """Print every figure and the targets."""
    for r in results:
        print(f"\n== {r['dataset']} ({r['rows']['train']} train / {r['rows']['test']} test rows)")
        print(f"full pipeline {r['pipeline_seconds']:.1f} s; v1_auto_select train "
              f"{r['v1_train_seconds']} s (budget {r['v1_budget_minutes']} min)")
        for s in r["steps"]:
            print(f"  {s['step']:10s} {s['version']:18s} {s['seconds']:7.1f} s")
        print("v1_auto_select log (selection):")
        for line in r["v1_progress"]:
            print(f"  {line}")
        for v in r["versions"]:
            print(f"  {v}")
        c = r["champion"]
        print(f"champion {c['version_name']} ({c['estimator']}): test RMSE {c['test_rmse']:.4f}, "
              f"{r['champion_over_floor']:.4f}x the noise floor {r['noise_floor_rmse']:.4f}, "
              f"interval coverage {c['test_interval_coverage']:.4f}")
        for name, b in r["baselines"].items():
            ratio = b["test_rmse"] / r["noise_floor_rmse"]
            print(f"  {name:24s} test RMSE {b['test_rmse']:.4f} ({ratio:.4f}x floor), "
                  f"fit {b['fit_seconds']} s")
        for target, measured, met in targets(r):
            print(f"  target: {target}: {measured} -> {'met' if met else 'NOT met'}")


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--overrides", default="", help="extra Hydra overrides for the pipeline")
    parser.add_argument("--out", default=None,
                        help=f"result file (default: {RESULTS.parent}/recommender_quality_"
                             "<data set>.json for one data set, else " + RESULTS.name + ")")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    commit = tracking.git_commit()  # what the run starts from (the steps import it then)
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench_dataset(k, args.overrides, Path(tmp)) for k in args.datasets.split(",")]
    for r in results:
        r["targets"] = [{"target": t, "measured": m, "met": ok} for t, m, ok in targets(r)]
    meta = {"started_utc": started, "git_commit": commit,
            "command": "python -m bench.recommender_quality " + " ".join(
                f"--{k} '{v}'" for k, v in vars(args).items() if k != "out" and v)}
    names = args.datasets.split(",")
    out = Path(args.out or (RESULTS.with_name(f"recommender_quality_{names[0]}.json")
                            if len(names) == 1 else RESULTS))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**meta, "results": results}, indent=2, default=str))
    print(json.dumps(meta))
    report(results)


if __name__ == "__main__":
    main()
