"""Metric computations shared by training (CV), evaluation (test) and serving (live)."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

# Direction of each metric the gate or the champion choice may use.
HIGHER_IS_BETTER = {
    "roc_auc": True,
    "f1": True,
    "accuracy": True,
    "precision": True,
    "recall": True,
    "r2": True,
    "rmse": False,
    "mae": False,
    "mse": False,
}


def classification_metrics(y, proba, threshold: float) -> dict[str, float]:
    """ROC AUC on probabilities; the rest on labels at ``threshold``."""
    y = np.asarray(y).astype(int)
    pred = (np.asarray(proba) >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    out = label_metrics(y, pred)
    out.update(tn=float(tn), fp=float(fp), fn=float(fn), tp=float(tp))
    if len(np.unique(y)) == 2:
        out["roc_auc"] = float(skm.roc_auc_score(y, proba))
        out["pr_auc"] = float(skm.average_precision_score(y, proba))
    return out


def label_metrics(y, pred) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of hard labels."""
    return {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
    }


def regression_metrics(y, pred) -> dict[str, float]:
    """RMSE, MAE, MSE and R²."""
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    mse = float(np.mean((y - pred) ** 2))
    out = {"rmse": mse**0.5, "mae": float(np.mean(np.abs(y - pred))), "mse": mse}
    out["r2"] = float(skm.r2_score(y, pred)) if len(y) > 1 and np.var(y) > 0 else float("nan")
    return out


def interval_metrics(y, lower, upper) -> dict[str, float]:
    """Share of true values inside the interval, and its mean width."""
    y = np.asarray(y, dtype=float)
    inside = (y >= lower) & (y <= upper)
    return {
        "interval_coverage": float(inside.mean()),
        "interval_width": float(np.mean(np.asarray(upper) - np.asarray(lower))),
    }


def best_f1_threshold(y, proba) -> float:
    """Threshold on out-of-fold probabilities that maximises F1."""
    y, proba = np.asarray(y).astype(int), np.asarray(proba)
    grid = np.linspace(0.05, 0.95, 91)
    scores = [_f1_of_labels(y, proba >= t) for t in grid]
    return float(grid[int(np.argmax(scores))])


def _f1_of_labels(y, pred) -> float:
    """``skm.f1_score(y, pred, zero_division=0)`` for 0/1 labels, without its validation.

    Same formula as scikit-learn, ``2 tp / (true + predicted positives)``, so the same
    float; the threshold search calls it 91 times, where the checks dominate.
    """
    positive = y == 1
    tp = int(np.count_nonzero(pred & positive))
    denom = int(np.count_nonzero(positive)) + int(np.count_nonzero(pred))
    return 2 * tp / denom if denom else 0.0


def conformal_halfwidth(y, pred, level: float) -> float:
    """Split-conformal half-width from out-of-fold absolute residuals."""
    resid = np.sort(np.abs(np.asarray(y, dtype=float) - np.asarray(pred, dtype=float)))
    n = len(resid)
    rank = min(int(np.ceil((n + 1) * level)), n)
    return float(resid[rank - 1])


def passes_gate(metrics: dict[str, float], gate: dict) -> tuple[bool, list[str]]:
    """Check every gate bound whose metric exists; return failures as text."""
    failures = []
    for name, bound in gate.items():
        value = metrics.get(name)
        if value is None:
            continue
        if "min" in bound and not value >= bound["min"]:
            failures.append(f"{name}={value:.4f} < {bound['min']}")
        if "max" in bound and not value <= bound["max"]:
            failures.append(f"{name}={value:.4f} > {bound['max']}")
    return not failures, failures
