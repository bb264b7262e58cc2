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
    """The probability threshold (predict 1 at or above it) that maximises F1.

    Exact: ``precision_recall_curve`` gives precision and recall at every distinct
    probability in one pass, so F1 is known at every threshold that changes a label; a tie
    keeps the lowest such threshold. Without positive labels F1 is 0 everywhere and the
    threshold is 0.5.
    """
    y, proba = np.asarray(y).astype(int), np.asarray(proba, dtype=float)
    if not np.any(y == 1):
        return 0.5
    precision, recall, thresholds = skm.precision_recall_curve(y, proba)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    return float(thresholds[int(np.argmax(f1))])


def oof_residual_halfwidth(y, pred, level: float) -> float:
    """Half-width of a symmetric interval from K-fold out-of-fold absolute residuals.

    The ``ceil((n + 1) * level)``-th smallest of ``|y - pred|`` where ``pred`` are the
    out-of-fold predictions of a K-fold split of the training rows. The served interval is
    this half-width around the prediction of the model refitted on all rows: the "K-fold
    CV" interval of Barber et al. (2021), *Predictive inference with the jackknife+*. It is
    not split-conformal (no held-out calibration set, and the residuals come from the fold
    models, not the refitted one), so its coverage is approximate rather than guaranteed;
    ``evaluate`` measures it on the held-out test split (``test_interval_coverage``).
    """
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


def reliability_bins(y, proba, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Per equal-width probability bin: records, mean predicted probability, share of 1.

    Empty bins are kept (count 0, NaN means) so bins line up across calls.
    """
    y, proba = np.asarray(y, dtype=float), np.asarray(proba, dtype=float)
    which = np.clip((proba * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.bincount(which, weights=proba, minlength=n_bins) / count
        observed = np.bincount(which, weights=y, minlength=n_bins) / count
    return {"count": count, "mean_predicted": mean_pred, "observed": observed,
            "edges": np.linspace(0, 1, n_bins + 1)}


def calibration_metrics(y, proba, n_bins: int = 10) -> dict[str, float]:
    """Brier score and expected calibration error of probabilities of class 1.

    ECE over ``n_bins`` **equal-width** bins of the predicted probability: the mean, weighted
    by the bin's share of records, of ``|share of 1 - mean predicted probability|``
    (Guo et al., 2017). Equal-width rather than equal-mass bins: the bins are the same for
    every version and every window, so values and reliability plots compare directly.
    """
    y, proba = np.asarray(y, dtype=float), np.asarray(proba, dtype=float)
    bins = reliability_bins(y, proba, n_bins)
    used = bins["count"] > 0
    gaps = np.abs(bins["observed"][used] - bins["mean_predicted"][used])
    ece = float(np.sum(bins["count"][used] * gaps) / len(y)) if len(y) else float("nan")
    return {"brier": float(np.mean((proba - y) ** 2)), "ece": ece}
