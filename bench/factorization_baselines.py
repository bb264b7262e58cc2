"""Factorization models side by side on MovieLens-shaped generated data (one split, one run).

Writes the generator's ml-100k files to a temporary folder, reads them through the
``movielens`` adapter, makes the pipeline's own held-out split (``dataset=movielens``,
85/15, ``seed``), fits each method on the training split and prints its test RMSE, its
ratio to the noise floor (the oracle's RMSE on the same test rows) and its fit time.
Results go to ``bench/results/factorization.json``.

    python -m bench.factorization_baselines [--seed 11] [--methods baseline,svd,svdpp,fm_ids,fm]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from caretflow.config import compose
from caretflow.data.movielens import load_movielens
from caretflow.data.movielens_generator import read_truth, write_movielens
from caretflow.data.tables import feature_columns, training_split
from caretflow.modelling.bayesian_fm import BayesianFMRegressor
from caretflow.modelling.factorization import LatentFactorRegressor, for_dataset

RESULTS = Path(__file__).parent / "results" / "factorization.json"
METHODS = {
    "baseline": lambda: LatentFactorRegressor(algorithm="baseline"),
    "svd": lambda: LatentFactorRegressor(algorithm="svd"),
    "svdpp": lambda: LatentFactorRegressor(algorithm="svdpp"),
    "fm_ids": lambda: BayesianFMRegressor(numeric=[], categorical=[], implicit=False),
    "fm": lambda: BayesianFMRegressor(),
}


def table_shape(raw, target: str) -> dict:
    """Size, density, ratings per user and per item, rating shares of a ratings table."""
    per_user, per_item = raw.groupby("user_id").size(), raw["item_id"].value_counts()
    shares = raw[target].value_counts(normalize=True).sort_index()
    return {"ratings": len(raw), "users": len(per_user), "rated_items": len(per_item),
            "density": len(raw) / (len(per_user) * len(per_item)),
            "user_ratings_min": int(per_user.min()), "user_ratings_median": per_user.median(),
            "user_ratings_mean": round(per_user.mean(), 1),
            "user_ratings_max": int(per_user.max()), "item_ratings_max": int(per_item.max()),
            "item_ratings_median": per_item.median(),
            "items_under_10_ratings": round(float((per_item < 10).mean()), 3),
            "rating_shares": {int(k): round(float(v), 3) for k, v in shares.items()},
            "rating_mean": round(float(raw[target].mean()), 3)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11, help="generator seed")
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        write_movielens(tmp, seed=args.seed)
        cfg = compose(["dataset=movielens", f"dataset.path={tmp}", "profile=full"])
        raw = load_movielens(Path(tmp))
        truth = read_truth(tmp)
    raw["expected_rating"] = truth["expected_rating"].to_numpy()
    _, train, test = training_split(raw, cfg)
    cols, target = feature_columns(cfg.dataset), cfg.dataset.target
    floor = float(np.sqrt(np.mean((test[target] - test["expected_rating"]) ** 2)))
    shape = {**table_shape(raw, target), "train_rows": len(train), "test_rows": len(test),
             "noise_floor_rmse": floor}
    print("data:", json.dumps(shape))
    out = {"shape": shape, "seed": args.seed, "methods": {}}
    for name in args.methods.split(","):
        est = for_dataset(METHODS[name](), cfg.dataset)
        start = time.perf_counter()
        est.fit(train[cols], train[target])
        seconds = time.perf_counter() - start
        pred = np.clip(est.predict(test[cols]), 1, 5)
        rmse = float(np.sqrt(np.mean((pred - test[target]) ** 2)))
        out["methods"][name] = {"test_rmse": rmse, "over_floor": rmse / floor, "fit_s": seconds}
        print(f"{name:9s} test RMSE {rmse:.4f}  ({rmse / floor:.3f} x floor)  fit {seconds:.1f} s")
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
