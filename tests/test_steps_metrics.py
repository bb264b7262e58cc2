import numpy as np
import pytest
from sklearn import metrics as skm

from caretflow import metrics


def test_classification_metrics_confusion_counts():
    m = metrics.classification_metrics([0, 0, 1, 1], np.array([0.1, 0.6, 0.4, 0.9]), 0.5)
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (1, 1, 1, 1)
    assert m["roc_auc"] == 0.75
    assert m["f1"] == 0.5


def test_best_threshold_maximises_f1():
    y = np.array([0] * 80 + [1] * 20)
    proba = np.concatenate([np.linspace(0, 0.3, 80), np.linspace(0.35, 1, 20)])
    t = metrics.best_f1_threshold(y, proba)
    assert 0.3 <= t <= 0.35


def _brute_force_f1(y, proba):
    """F1 at every distinct probability used as threshold (predict 1 at or above it)."""
    cuts = np.unique(proba)
    f1 = [skm.f1_score(y, (proba >= t).astype(int), zero_division=0) for t in cuts]
    return cuts, np.array(f1)


def test_best_threshold_is_exact_against_brute_force():
    rng = np.random.default_rng(7)
    cases = [(1, 1.0, 2), (2, 0.5, 2), (50, 0.1, 8), (400, 0.2, 2), (3000, 0.5, 8)]
    for n, rate, decimals in cases:
        y = (rng.random(n) < rate).astype(int)
        if y.sum() == 0:
            y[0] = 1
        # informative but noisy scores; 2 decimals make many ties
        proba = np.round(np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1), decimals)
        cuts, f1 = _brute_force_f1(y, proba)
        t = metrics.best_f1_threshold(y, proba)
        assert t in set(cuts)
        f1_at_t = skm.f1_score(y, (proba >= t).astype(int), zero_division=0)
        assert f1_at_t == pytest.approx(f1.max(), abs=1e-12)
        assert t == cuts[np.isclose(f1, f1.max(), rtol=0, atol=1e-12)].min()  # ties: lowest


def test_best_threshold_beats_any_grid_threshold():
    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.2).astype(int)
    proba = rng.beta(2, 5, 2000) + 0.25 * y
    t = metrics.best_f1_threshold(y, proba)
    best = skm.f1_score(y, (proba >= t).astype(int))
    grid = [skm.f1_score(y, (proba >= g).astype(int)) for g in np.linspace(0.05, 0.95, 91)]
    assert best >= max(grid)


def test_best_threshold_without_positives_is_half():
    assert metrics.best_f1_threshold(np.zeros(10), np.linspace(0, 1, 10)) == 0.5


def test_oof_residual_halfwidth_covers_level():
    rng = np.random.default_rng(0)
    y, pred = rng.normal(size=2000), np.zeros(2000)
    half = metrics.oof_residual_halfwidth(y, pred, 0.9)
    assert half == pytest.approx(1.645, abs=0.1)
    y_new = rng.normal(size=5000)
    cov = metrics.interval_metrics(y_new, -half, half)["interval_coverage"]
    assert 0.88 < cov < 0.92


def test_gate_bounds():
    gate = {"rmse": {"max": 1.0}, "r2": {"min": 0.6}}
    ok, fails = metrics.passes_gate({"rmse": 0.9, "r2": 0.5}, gate)
    assert not ok and fails == ["r2=0.5000 < 0.6"]
    assert metrics.passes_gate({"roc_auc": 0.9}, {"roc_auc": {"min": 0.8}, "rmse": {"max": 1}})[0]
