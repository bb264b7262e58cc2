"""Regression intervals: measured coverage on held-out ratings rows at the nominal 90 %."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from caretflow.config import compose
from caretflow.data import tables
from caretflow.metrics import interval_metrics
from caretflow.modelling.build import INTERVAL_METHOD, fit_version

log = logging.getLogger(__name__)


@pytest.mark.slow
def test_kfold_residual_intervals_cover_90_percent_of_held_out_ratings():
    """Two generated data sets of 8,000 ratings, each half held out (about 8,000 rows).

    At 8,000 rows the standard error of a 90 % coverage is 0.34 points, so the 88-93 %
    band is about 6 standard errors wide on each side of the nominal level.
    """
    inside, n = 0, 0
    for seed in (7, 11):
        cfg = compose(
            [
                "dataset=ratings",
                "version=v2_random_forest",
                "profile=quick",
                "dataset.source.generator.n_users=200",
                f"dataset.source.generator.seed={seed}",
                "dataset.split.test_size=0.5",
            ]
        )
        _, train, held_out = tables.training_split(tables.load_raw(cfg.dataset), cfg)
        columns = tables.feature_columns(cfg.dataset)
        result = fit_version(cfg, train[columns], train[cfg.dataset.target])
        assert result.model.contract["decision"] == {
            "interval_method": INTERVAL_METHOD,
            "interval_level": 0.9,
        }
        _, lower, upper = result.model.predict_interval(held_out[columns])
        coverage = interval_metrics(held_out[cfg.dataset.target], lower, upper)
        log.info(
            "seed %d: coverage %.4f on %d held-out rows",
            seed,
            coverage["interval_coverage"],
            len(held_out),
        )
        inside += coverage["interval_coverage"] * len(held_out)
        n += len(held_out)
    measured = inside / n
    stderr = np.sqrt(0.9 * 0.1 / n)
    assert n > 7000
    assert 0.88 <= measured <= 0.93, f"coverage {measured:.4f} on {n} rows (se {stderr:.4f})"
