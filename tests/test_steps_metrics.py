import numpy as np
import pytest
from sklearn import metrics as skm

from caretflow import metrics as M
from caretflow.modelling.selection import Candidate, apply_gate, choose


def test_classification_metrics_confusion_counts():
    m = M.classification_metrics([0, 0, 1, 1], np.array([0.1, 0.6, 0.4, 0.9]), 0.5)
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (1, 1, 1, 1)
    assert m["roc_auc"] == 0.75
    assert m["f1"] == 0.5


def test_best_threshold_maximises_f1():
    y = np.array([0] * 80 + [1] * 20)
    proba = np.concatenate([np.linspace(0, 0.3, 80), np.linspace(0.35, 1, 20)])
    t = M.best_f1_threshold(y, proba)
    assert 0.3 <= t <= 0.35


def test_best_threshold_same_floats_as_sklearn_f1():
    grid = np.linspace(0.05, 0.95, 91)
    rng = np.random.default_rng(7)
    for n, rate, decimals in [(1, 0.5, 2), (60, 0.0, 8), (400, 0.2, 2), (3000, 0.5, 8)]:
        y = (rng.random(n) < rate).astype(int)
        proba = np.round(rng.random(n), decimals)  # 2 decimals: ties on the grid
        ref = [skm.f1_score(y, (proba >= t).astype(int), zero_division=0) for t in grid]
        assert [M._f1_of_labels(y, proba >= t) for t in grid] == ref
        assert M.best_f1_threshold(y, proba) == float(grid[int(np.argmax(ref))])


def test_conformal_halfwidth_covers_level():
    rng = np.random.default_rng(0)
    y, pred = rng.normal(size=2000), np.zeros(2000)
    half = M.conformal_halfwidth(y, pred, 0.9)
    assert half == pytest.approx(1.645, abs=0.1)
    y_new = rng.normal(size=5000)
    cov = M.interval_metrics(y_new, -half, half)["interval_coverage"]
    assert 0.88 < cov < 0.92


def test_gate_bounds():
    ok, fails = M.passes_gate({"rmse": 0.9, "r2": 0.5}, {"rmse": {"max": 1.0}, "r2": {"min": 0.6}})
    assert not ok and fails == ["r2=0.5000 < 0.6"]
    assert M.passes_gate({"roc_auc": 0.9}, {"roc_auc": {"min": 0.8}, "rmse": {"max": 1}})[0]


def _c(v, auc, f1=0.6):
    return Candidate(str(v), f"v{v}", f"run{v}", {"roc_auc": auc, "f1": f1})


GATE = {"roc_auc": {"min": 0.8}, "f1": {"min": 0.55}}


def test_champion_is_best_passing_and_challenger_runner_up():
    cands = [_c(1, 0.85), _c(2, 0.86), _c(3, 0.90, f1=0.4)]
    apply_gate(cands, GATE)
    champ, chall = choose(cands, None, "roc_auc")
    assert (champ.version, chall.version) == ("2", "1")  # v3 fails the F1 floor


def test_current_champion_kept_unless_beaten():
    current = _c(9, 0.87)
    cands = [_c(1, 0.85), _c(2, 0.86)]
    apply_gate([current, *cands], GATE)
    champ, chall = choose(cands, current, "roc_auc")
    assert (champ.version, chall.version) == ("9", "2")
    better = [_c(3, 0.88)]
    apply_gate(better, GATE)
    assert choose(better, current, "roc_auc")[0].version == "3"


def test_no_passing_version_means_no_change():
    cands = [_c(1, 0.7)]
    apply_gate(cands, GATE)
    assert choose(cands, None, "roc_auc") == (None, None)


def test_lower_is_better_for_rmse():
    cands = [Candidate("1", "a", "r1", {"rmse": 0.8}), Candidate("2", "b", "r2", {"rmse": 0.7})]
    apply_gate(cands, {"rmse": {"max": 1.0}})
    assert choose(cands, None, "rmse")[0].version == "2"
