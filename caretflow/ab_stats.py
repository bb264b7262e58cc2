"""Champion against challenger: metric estimates with intervals and a sequential verdict.

Every metric is estimated with a normal approximation of its sampling distribution:
ROC AUC by DeLong's structural components (paired across arms when shadow mode scored the
same records with both models), accuracy as a proportion, RMSE and MAE by the delta method
on per-record errors, F1 by a seeded bootstrap.

The verdict is a mixture sequential probability ratio test (mSPRT; Johari, Pekelis and Walsh,
"Always valid inference", 2017) on the difference of the primary metric, with a normal mixing
distribution of scale ``effect``. Its p-value and confidence interval are valid at every look,
so the server may evaluate the test as often as it likes without inflating false promotions:
under "both models are equally good", the chance that the test *ever* says
``promote_challenger`` is at most ``alpha / 2`` (Ville's inequality; only one direction
promotes). ``needed_per_arm`` is the per-arm sample at which the test, looking only then,
would detect a difference of ``effect`` with probability ``power``; a test that reaches it
without deciding keeps the champion (the challenger is not better by the effect asked for).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from caretflow.metrics import HIGHER_IS_BETTER

MIN_LABELS = 30  # per arm, before any verdict
# The metrics an A/B comparison reports per task, and the smallest improvement worth
# promoting by default (metric units; ``AB_MIN_EFFECT`` overrides it).
REPORTED = {"classification": ["roc_auc", "accuracy", "f1"], "regression": ["rmse", "mae"]}
DEFAULT_EFFECT = {"roc_auc": 0.02, "accuracy": 0.02, "f1": 0.03, "rmse": 0.05, "mae": 0.05}
BOOTSTRAP = 200


def _midranks(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def delong(y, score) -> tuple[float, np.ndarray, np.ndarray]:
    """ROC AUC and its DeLong structural components (positives, negatives)."""
    y, score = np.asarray(y).astype(int), np.asarray(score, dtype=float)
    pos, neg = score[y == 1], score[y == 0]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise ValueError("ROC AUC needs both classes")
    tz = _midranks(np.concatenate([pos, neg]))
    v10 = (tz[:m] - _midranks(pos)) / n
    v01 = 1.0 - (tz[m:] - _midranks(neg)) / m
    return float(v10.mean()), v10, v01


def auc_with_variance(y, score) -> tuple[float, float]:
    """ROC AUC and DeLong's variance of it."""
    auc, v10, v01 = delong(y, score)
    return auc, float(v10.var(ddof=1) / len(v10) + v01.var(ddof=1) / len(v01))


def paired_auc_difference(y, score_a, score_b) -> tuple[float, float]:
    """AUC(b) - AUC(a) on the same records, and its paired DeLong variance."""
    auc_a, a10, a01 = delong(y, score_a)
    auc_b, b10, b01 = delong(y, score_b)
    d10, d01 = b10 - a10, b01 - a01
    return auc_b - auc_a, float(d10.var(ddof=1) / len(d10) + d01.var(ddof=1) / len(d01))


def _f1(y, pred) -> float:
    tp = float(np.sum((pred == 1) & (y == 1)))
    denom = float(np.sum(pred == 1) + np.sum(y == 1))
    return 2 * tp / denom if denom else 0.0


def estimate(metric: str, y, score, pred=None) -> tuple[float, float]:
    """A metric's value and the variance of that estimate.

    Args:
        metric: ``roc_auc``, ``accuracy``, ``f1``, ``rmse`` or ``mae``.
        y: true values.
        score: probability of class 1 (classification) or the prediction (regression).
        pred: predicted labels (classification metrics other than ROC AUC).
    """
    y, score = np.asarray(y, dtype=float), np.asarray(score, dtype=float)
    n = len(y)
    if metric == "roc_auc":
        return auc_with_variance(y, score)
    if metric == "accuracy":
        p = float(np.mean(np.asarray(pred) == y))
        return p, p * (1 - p) / n
    if metric == "f1":
        pred = np.asarray(pred)
        rng = np.random.default_rng(0)
        idx = rng.integers(0, n, size=(BOOTSTRAP, n))
        boot = [_f1(y[i], pred[i]) for i in idx]
        return _f1(y, pred), float(np.var(boot, ddof=1))
    err = y - score
    if metric == "rmse":
        sq = err**2
        mse = float(sq.mean())
        var_mse = float(sq.var(ddof=1) / n)
        return math.sqrt(mse), var_mse / (4 * mse) if mse > 0 else 0.0
    if metric == "mae":
        ab = np.abs(err)
        return float(ab.mean()), float(ab.var(ddof=1) / n)
    raise ValueError(f"no estimator for metric {metric!r}")


def interval(value: float, variance: float, level: float = 0.95) -> dict[str, float]:
    """A normal-approximation interval ``{value, ci_low, ci_high}``."""
    half = stats.norm.ppf(0.5 + level / 2) * math.sqrt(max(variance, 0.0))
    return {"value": float(value), "ci_low": float(value - half), "ci_high": float(value + half)}


def msprt(diff: float, variance: float, tau: float, alpha: float) -> dict[str, float]:
    """Always-valid p-value and confidence interval of a difference (normal mixture SPRT).

    Args:
        diff: the estimated difference.
        variance: its sampling variance.
        tau: scale of the normal mixing distribution (the effect of interest).
        alpha: the test's level.
    """
    v, t2 = max(variance, 1e-18), tau**2
    log_lr = 0.5 * math.log(v / (v + t2)) + diff**2 * t2 / (2 * v * (v + t2))
    p_value = min(1.0, math.exp(-log_lr)) if log_lr < 700 else 0.0
    half = math.sqrt(2 * v * (v + t2) / t2 * (math.log(1 / alpha) + 0.5 * math.log((v + t2) / v)))
    return {"value": float(diff), "ci_low": float(diff - half), "ci_high": float(diff + half),
            "p_value": float(p_value), "half_width": half}


def needed_per_arm(unit_variance: float, effect: float, alpha: float, power: float,
                   limit: int = 10_000_000) -> int | None:
    """Per-arm sample at which the mSPRT, looking only then, detects ``effect`` with ``power``.

    ``unit_variance`` is n times the variance of the difference at n records per arm.
    """
    if unit_variance <= 0 or effect <= 0:
        return None
    def detects(n: int) -> bool:
        return min_detectable_effect(unit_variance, n, effect, alpha, power) <= effect

    lo, hi = 2, 2
    while not detects(hi):
        lo, hi = hi, hi * 2
        if hi > limit:
            return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if not detects(mid) else (lo, mid)
    return lo


def min_detectable_effect(unit_variance: float, n: int, tau: float, alpha: float,
                          power: float) -> float:
    """Smallest difference the test detects with ``power`` at ``n`` records per arm."""
    v = unit_variance / max(n, 1)
    return msprt(0.0, v, tau, alpha)["half_width"] + stats.norm.ppf(power) * math.sqrt(v)


def _arm(metrics: list[str], arm: dict) -> dict:
    out = {"version": arm["version"], "labels": len(arm["y"]), "metrics": {}}
    if len(arm["y"]) < 2:
        return {**out, "metrics": dict.fromkeys(metrics)}
    for metric in metrics:
        try:
            out["metrics"][metric] = interval(*estimate(metric, arm["y"], arm["score"],
                                                        arm.get("pred")))
        except ValueError:
            out["metrics"][metric] = None
    return out


def _difference(metric: str, champion: dict, challenger: dict, paired: dict | None):
    """Challenger minus champion, its variance, n per arm, and whether it is paired."""
    if paired is not None and len(paired["y"]) >= MIN_LABELS:
        y, a, b = paired["y"], paired["champion"], paired["challenger"]
        if metric == "roc_auc":
            diff, var = paired_auc_difference(y, a, b)
        else:  # per-record losses on the same records: a paired mean difference
            loss_a, loss_b = _losses(metric, y, a, paired.get("champion_pred")), _losses(
                metric, y, b, paired.get("challenger_pred"))
            diff, var = _paired_metric(metric, loss_a, loss_b)
        return diff, var, len(y), True
    va, vb = (estimate(metric, arm["y"], arm["score"], arm.get("pred"))
              for arm in (champion, challenger))
    n = min(len(champion["y"]), len(challenger["y"]))
    return vb[0] - va[0], va[1] + vb[1], n, False


def _losses(metric: str, y, score, pred) -> np.ndarray:
    y, score = np.asarray(y, dtype=float), np.asarray(score, dtype=float)
    if metric == "accuracy":
        return (np.asarray(pred) == y).astype(float)
    if metric == "rmse":
        return (y - score) ** 2
    if metric == "mae":
        return np.abs(y - score)
    raise ValueError(f"no paired estimator for {metric!r}")


def _paired_metric(metric: str, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = b - a
    if metric != "rmse":
        return float(d.mean()), float(d.var(ddof=1) / len(d))
    ma, mb = float(a.mean()), float(b.mean())  # delta method: sqrt(mean) of each arm
    ga, gb = 0.5 / math.sqrt(ma), 0.5 / math.sqrt(mb)
    cov = np.cov(a, b, ddof=1) / len(a)
    var = ga**2 * cov[0, 0] + gb**2 * cov[1, 1] - 2 * ga * gb * cov[0, 1]
    return math.sqrt(mb) - math.sqrt(ma), float(var)


def _ready(metric: str, arm: dict) -> bool:
    y = np.asarray(arm["y"])
    if len(y) < MIN_LABELS:
        return False
    return metric != "roc_auc" or len(np.unique(y)) == 2


def verdict(metric: str, metrics: list[str], champion: dict, challenger: dict,
            paired: dict | None = None, effect: float = 0.02, alpha: float = 0.05,
            power: float = 0.8) -> dict:
    """The A/B verdict of ``/ab_test``.

    Args:
        metric: the primary metric the decision is taken on.
        metrics: every metric to report per arm (with 95 % intervals).
        champion: ``{version, y, score, pred}`` of the champion arm's labelled records.
        challenger: the same for the challenger arm.
        paired: shadow mode's records scored by both: ``{y, champion, challenger,
            champion_pred, challenger_pred}``; a paired test when it holds enough labels.
        effect: the smallest improvement worth promoting, in the metric's units.
        alpha: level of the sequential test.
        power: power asked for at ``needed_per_arm``.

    Returns:
        ``champion``, ``challenger``, ``metric``, ``difference`` (challenger minus champion
        with an always-valid interval and p-value), ``needed_per_arm``,
        ``min_detectable_effect``, ``paired`` and ``decision``.
    """
    out = {"champion": _arm(metrics, champion), "challenger": _arm(metrics, challenger),
           "metric": metric, "effect": effect, "alpha": alpha, "power": power,
           "method": "mSPRT (normal mixture), always valid", "paired": False,
           "difference": None, "needed_per_arm": None, "min_detectable_effect": None,
           "decision": "insufficient_data"}
    ready = paired is not None and _ready(metric, paired) or (
        _ready(metric, champion) and _ready(metric, challenger))
    if not ready:
        return out
    diff, var, n, is_paired = _difference(metric, champion, challenger, paired)
    test = msprt(diff, var, effect, alpha)
    unit = var * n
    needed = needed_per_arm(unit, effect, alpha, power)
    better = diff > 0 if HIGHER_IS_BETTER[metric] else diff < 0
    if test["p_value"] <= alpha:
        decision = "promote_challenger" if better else "keep_champion"
    elif needed is not None and n >= needed:
        decision = "keep_champion"  # reached the horizon: not better by ``effect``
    else:
        decision = "insufficient_data"
    test.pop("half_width")
    out.update(difference=test, needed_per_arm=needed, paired=is_paired, decision=decision,
               min_detectable_effect=float(min_detectable_effect(unit, n, effect, alpha,
                                                                 power)))
    return out
