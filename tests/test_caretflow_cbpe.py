"""Label-free performance estimates (CBPE) against realised metrics, and drift flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from caretflow.drift import training_reference
from caretflow.metrics import calibration_metrics
from caretflow.monitoring.cbpe import estimate_classification, estimate_regression
from caretflow.monitoring.feature_drift import input_drift

THRESHOLD = 0.35


def _calibrated(n: int, seed: int, shift: float = 0.0):
    """Probabilities that are calibrated by construction, and labels drawn from them."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(shift, 1, n), rng.normal(0, 1, n)
    p = 1 / (1 + np.exp(-(1.6 * x1 - 0.8 * x2 - 1.0)))
    return p, rng.binomial(1, p)


def _realised(p, y) -> dict:
    pred = p >= THRESHOLD
    return {"accuracy": skm.accuracy_score(y, pred), "f1": skm.f1_score(y, pred),
            "roc_auc": skm.roc_auc_score(y, p)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimates_match_realised_metrics_of_a_calibrated_classifier(seed):
    p, y = _calibrated(5000, seed)
    est, real = estimate_classification(p, THRESHOLD), _realised(p, y)
    for metric in ("accuracy", "f1", "roc_auc"):
        assert abs(est[metric] - real[metric]) < 0.02, (metric, est[metric], real[metric])
    cm = skm.confusion_matrix(y, p >= THRESHOLD).ravel()
    expected = [est[k] for k in ("tn", "fp", "fn", "tp")]
    assert np.allclose(expected, cm, rtol=0.1), (expected, cm)
    assert calibration_metrics(y, p)["ece"] < 0.03


@pytest.mark.parametrize("seed", [3, 4])
def test_estimates_follow_a_covariate_shift(seed):
    base, shifted = _calibrated(5000, seed), _calibrated(5000, seed + 10, shift=0.8)
    moved = _realised(*shifted)["f1"] - _realised(*base)["f1"]
    assert abs(moved) > 0.05  # the shift really changes performance ...
    est, real = estimate_classification(shifted[0], THRESHOLD), _realised(*shifted)
    for metric in ("accuracy", "f1", "roc_auc"):  # ... and the estimate follows it
        assert abs(est[metric] - real[metric]) < 0.03, (metric, est[metric], real[metric])


def test_concept_drift_is_what_the_estimate_cannot_see():
    p, y = _calibrated(5000, 7)
    y = np.where(p > 0.6, 1 - y, y)  # the relation of inputs to labels changed for a segment
    est, real = estimate_classification(p, THRESHOLD), _realised(p, y)
    assert est["roc_auc"] - real["roc_auc"] > 0.1


def test_regression_rmse_from_a_calibrated_interval():
    rng = np.random.default_rng(0)
    pred = rng.uniform(1, 5, 4000)
    y = pred + rng.normal(0, 0.8, 4000)
    half = 0.8 * 1.6449  # the 90 % interval of those errors
    est = estimate_regression(pred - half, pred + half, 0.9)
    rmse = float(np.sqrt(np.mean((y - pred) ** 2)))
    assert abs(est["rmse"] - rmse) / rmse < 0.05, (est, rmse)


SCHEMA = {"Age": {"type": "int"}, "Balance": {"type": "float"},
          "Geography": {"type": "category", "categories": ["France", "Germany", "Spain"]},
          "Tenure": {"type": "int"}}


def _frame(n: int, rng, age_shift: float = 0.0, shares=(0.5, 0.25, 0.25)) -> pd.DataFrame:
    return pd.DataFrame({"Age": rng.normal(39 + age_shift, 10, n).round().astype(int),
                         "Balance": rng.exponential(70_000, n),
                         "Geography": rng.choice(["France", "Germany", "Spain"], n, p=shares),
                         "Tenure": rng.integers(0, 11, n)})


@pytest.mark.parametrize("with_train", [True, False], ids=["ks", "deciles"])
def test_drift_is_flagged_on_exactly_the_shifted_features(with_train):
    rng = np.random.default_rng(0)
    train = _frame(8000, rng)
    reference = training_reference(train, SCHEMA)
    known = train if with_train else None
    shifted = _frame(2000, rng, age_shift=10, shares=(0.3, 0.2, 0.5))  # Spain doubled
    flagged = {c for c, d in input_drift(reference, shifted, known).items() if d["flagged"]}
    assert flagged == {"Age", "Geography"}
    alarms = sum(any(d["flagged"] for d in input_drift(reference, _frame(2000, rng),
                                                       known).values()) for _ in range(20))
    assert alarms <= 1, f"{alarms} false alarms in 20 unshifted samples"
