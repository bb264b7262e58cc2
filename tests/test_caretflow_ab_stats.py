"""A/B statistics: DeLong against sklearn and the bootstrap, the sequential verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from caretflow import ab_stats


def _arm(rng, n, auc, version="1", positives=0.2):
    y = (rng.random(n) < positives).astype(int)
    mu = math.sqrt(2) * norm.ppf(auc)
    score = 1 / (1 + np.exp(-(mu * y + rng.standard_normal(n))))
    return {"version": version, "y": y, "score": score, "pred": (score >= 0.5).astype(int)}


def test_delong_auc_equals_sklearn_and_its_variance_matches_the_bootstrap():
    rng = np.random.default_rng(1)
    arm = _arm(rng, 2000, 0.8)
    auc, var = ab_stats.auc_with_variance(arm["y"], arm["score"])
    assert auc == pytest.approx(roc_auc_score(arm["y"], arm["score"]), abs=1e-12)
    idx = rng.integers(0, 2000, size=(400, 2000))
    boot = [roc_auc_score(arm["y"][i], arm["score"][i]) for i in idx]
    assert math.sqrt(var) == pytest.approx(np.std(boot, ddof=1), rel=0.15)


def test_paired_auc_difference_is_tighter_than_unpaired_on_correlated_scores():
    rng = np.random.default_rng(2)
    arm = _arm(rng, 3000, 0.8)
    other = np.clip(arm["score"] + 0.02 * rng.standard_normal(3000), 0, 1)
    diff, var = ab_stats.paired_auc_difference(arm["y"], arm["score"], other)
    _, va = ab_stats.auc_with_variance(arm["y"], arm["score"])
    _, vb = ab_stats.auc_with_variance(arm["y"], other)
    assert diff == pytest.approx(roc_auc_score(arm["y"], other) - roc_auc_score(arm["y"],
                                                                               arm["score"]))
    assert var < (va + vb) / 10


@pytest.mark.parametrize("metric", ["accuracy", "f1", "rmse", "mae"])
def test_estimates_cover_their_own_value(metric):
    rng = np.random.default_rng(3)
    arm = _arm(rng, 1500, 0.8)
    score = arm["score"] if metric in ("accuracy", "f1") else arm["score"] * 4 + 1
    y = arm["y"] if metric in ("accuracy", "f1") else score + rng.normal(0, 0.5, 1500)
    value, var = ab_stats.estimate(metric, y, score, arm["pred"])
    assert var > 0
    if metric == "rmse":
        assert value == pytest.approx(0.5, rel=0.1)
        assert math.sqrt(var) == pytest.approx(0.5 / math.sqrt(2 * 1500), rel=0.2)


def test_too_few_labels_is_insufficient_data():
    rng = np.random.default_rng(4)
    out = ab_stats.verdict("roc_auc", ["roc_auc", "accuracy"], _arm(rng, 20, 0.8),
                           _arm(rng, 20, 0.9))
    assert out["decision"] == "insufficient_data"
    assert out["difference"] is None and out["champion"]["labels"] == 20


def test_a_clearly_better_challenger_is_promoted_and_a_clearly_worse_one_is_not():
    rng = np.random.default_rng(5)
    good, bad = _arm(rng, 3000, 0.9, "2"), _arm(rng, 3000, 0.7, "1")
    promote = ab_stats.verdict("roc_auc", ["roc_auc", "f1"], bad, good)
    assert promote["decision"] == "promote_challenger"
    d = promote["difference"]
    assert d["ci_low"] < d["value"] < d["ci_high"] and d["ci_low"] > 0 and d["p_value"] < 0.05
    assert promote["challenger"]["metrics"]["roc_auc"]["value"] > 0.85
    keep = ab_stats.verdict("roc_auc", ["roc_auc"], good, bad)
    assert keep["decision"] == "keep_champion" and keep["difference"]["ci_high"] < 0


def test_lower_is_better_metrics_promote_on_a_smaller_error():
    rng = np.random.default_rng(6)
    truth = rng.normal(3, 1, 2000)
    champ = {"version": "1", "y": truth, "score": truth + rng.normal(0, 1.0, 2000)}
    chall = {"version": "2", "y": truth, "score": truth + rng.normal(0, 0.6, 2000)}
    out = ab_stats.verdict("rmse", ["rmse", "mae"], champ, chall, effect=0.05)
    assert out["decision"] == "promote_challenger" and out["difference"]["value"] < 0


def test_paired_shadow_records_need_far_fewer_labels():
    rng = np.random.default_rng(7)
    truth = rng.normal(3, 1, 400)
    a = truth + rng.normal(0, 0.8, 400)
    b = a - 0.1 * (a - truth)  # the challenger shrinks every error by 10 %
    champ, chall = {"version": "1", "y": truth, "score": a}, {"version": "2", "y": truth,
                                                              "score": b}
    unpaired = ab_stats.verdict("rmse", ["rmse"], champ, chall, effect=0.05)
    paired = ab_stats.verdict("rmse", ["rmse"], champ, chall, effect=0.05,
                              paired={"y": truth, "champion": a, "challenger": b})
    assert paired["paired"] and not unpaired["paired"]
    assert paired["decision"] == "promote_challenger"
    assert unpaired["decision"] == "insufficient_data"
    assert paired["needed_per_arm"] < unpaired["needed_per_arm"] / 10


def test_needed_per_arm_gives_the_asked_power_at_a_single_look():
    unit, effect = 0.5, 0.02
    n = ab_stats.needed_per_arm(unit, effect, 0.05, 0.8)
    assert ab_stats.min_detectable_effect(unit, n, effect, 0.05, 0.8) <= effect
    assert ab_stats.min_detectable_effect(unit, n - 1, effect, 0.05, 0.8) > effect
