r"""Choose the id encoders' shrinkage by cross-validation on the training split only.

Scores every combination of a small grid of encoder settings (Hydra config keys) with
one model family's pipeline, by k-fold CV on the same training split preprocess makes;
the test split is never read. Prints the table, best first; copy the winner into the
data set config.

    python -m caretflow.modelling.tune_encoders dataset=ratings model=logistic_regression \
        --grid dataset.features.encoding.folds=5,20 dataset.features.baseline.reg=2,5
"""

from __future__ import annotations

import argparse
import itertools
import logging

import pandas as pd

from caretflow.config import compose
from caretflow.data import tables
from caretflow.modelling.build import make_estimator, make_pipeline
from caretflow.modelling.search import cv_score, cv_splitter

log = logging.getLogger("caretflow.modelling.tune_encoders")


def parse_grid(tokens: list[str]) -> dict[str, list[str]]:
    """``key=v1,v2`` tokens -> ``{key: [v1, v2]}`` (values stay Hydra override strings)."""
    grid = {}
    for token in tokens:
        key, _, values = token.partition("=")
        if not values:
            raise ValueError(f"--grid {token!r}: expected key=v1,v2,...")
        grid[key] = values.split(",")
    return grid


def encoder_grid(overrides: list[str], grid: dict[str, list[str]], folds: int = 5) -> pd.DataFrame:
    """CV score of every grid point on the training split, best first.

    Args:
        overrides: Hydra overrides shared by every point (data set, model, ...).
        grid: config key -> values to try.
        folds: CV folds on the training split.

    Returns:
        One row per grid point: its values and ``cv_<metric>`` (RMSE or ROC AUC).
    """
    cfg = compose(overrides)
    ds = cfg.dataset
    _, train, _ = tables.training_split(tables.load_raw(ds), cfg)
    X, y = train[tables.feature_columns(ds)], train[ds.target]
    cv = cv_splitter(ds.task, folds, cfg.seed)
    metric = cfg.dataset.primary_metric[ds.task]
    rows = []
    points = list(itertools.product(*grid.values()))
    for i, values in enumerate(points, start=1):
        point = dict(zip(grid, values, strict=True))
        cfg = compose([*overrides, *(f"{k}={v}" for k, v in point.items())])
        pipeline = make_pipeline(cfg, make_estimator(cfg, ds.task), ds.task)
        score = cv_score(pipeline, X, y, ds.task, cv)
        rows.append({**point, f"cv_{metric}": score})
        log.info("point %d/%d %s: cv %s %.5f", i, len(points), point, metric, score)
    return pd.DataFrame(rows).sort_values(f"cv_{metric}", ascending=metric == "rmse")


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every point")
    parser.add_argument("--grid", nargs="+", required=True, help="key=v1,v2 ...")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    table = encoder_grid(args.overrides, parse_grid(args.grid), args.folds)
    log.info("best first:\n%s", table.to_string(index=False))


if __name__ == "__main__":
    main()
