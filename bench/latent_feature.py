"""The out-of-fold latent-factor feature (``lf_pred``) on and off, for one model family.

Trains the family twice with ``caretflow.modelling.build.fit_version`` on the pipeline's own
held-out split, ``dataset.features.latent_factors`` off and on, and prints CV RMSE, held-out
RMSE and training time of each. ``movielens`` runs on the MovieLens-shaped generated data
(``caretflow.data.movielens_generator``, written to a temporary folder). Results go to
``bench/results/latent_feature_<dataset>.json``.

    python -m bench.latent_feature [--dataset movielens|ratings] [--model logistic_regression]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from caretflow.config import compose
from caretflow.data.movielens_generator import write_movielens
from caretflow.data.tables import feature_columns, load_raw, training_split
from caretflow.modelling.build import fit_version

RESULTS = Path(__file__).parent / "results"
SWITCH = {"off": "dataset.features.latent_factors=null",
          "on": "dataset.features.latent_factors={algorithm:svd,n_factors:20,n_epochs:20}"}


def run(overrides: list[str]) -> dict:
    """CV and held-out RMSE of one training with ``overrides``."""
    cfg = compose(overrides)
    _, train, test = training_split(load_raw(cfg.dataset), cfg)
    cols, target = feature_columns(cfg.dataset), cfg.dataset.target
    start = time.perf_counter()
    result = fit_version(cfg, train[cols], train[target])
    seconds = time.perf_counter() - start
    pred = result.model.predict(test[cols])
    return {"cv_rmse": result.cv_metrics["rmse"],
            "test_rmse": float(np.sqrt(np.mean((pred - test[target]) ** 2))),
            "train_s": seconds}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="movielens", choices=["movielens", "ratings"])
    parser.add_argument("--model", default="logistic_regression")
    parser.add_argument("--profile", default="quick")
    args = parser.parse_args(argv)
    out = {"dataset": args.dataset, "model": args.model, "profile": args.profile}
    with tempfile.TemporaryDirectory() as tmp:
        base = [f"dataset={args.dataset}", f"model={args.model}", "model.search=null",
                f"profile={args.profile}"]
        if args.dataset == "movielens":
            base.append(f"dataset.path={write_movielens(tmp)}")
        for name, switch in SWITCH.items():
            out[name] = run([*base, switch])
            print(f"latent factors {name:3s}: CV RMSE {out[name]['cv_rmse']:.4f}  held-out RMSE "
                  f"{out[name]['test_rmse']:.4f}  training {out[name]['train_s']:.0f} s")
    (RESULTS / f"latent_feature_{args.dataset}.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
