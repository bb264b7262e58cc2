"""Performance estimated without labels, from the model's own calibrated outputs.

Classification follows confidence-based performance estimation (CBPE, as NannyML describes
it; written here because NannyML pins older XGBoost and LightGBM than ours). If the
probability ``p`` of class 1 is calibrated, a record predicted 1 is a true positive with
probability ``p`` and a false positive with ``1 - p``; a record predicted 0 is a false
negative with ``p`` and a true negative with ``1 - p``. Summing gives the expected confusion
matrix, and from it expected accuracy, precision, recall and F1. The expected ROC curve
counts, at every threshold, the expected true and false positives above it (TPR(t) =
sum p over scores >= t / sum p; FPR(t) the same with 1 - p); its area is the estimated
ROC AUC.

Regression: the served interval is ``prediction +- h`` at nominal level ``L``; if errors
are centred normal with a constant spread and the interval is calibrated, the error's
standard deviation, hence the expected RMSE, is ``h / z((1 + L) / 2)``.

Assumptions, stated in every report: calibration (measured on the held-out split by
``test_ece``), and **no concept drift**: ``P(y | x)`` is what it was at training. Covariate
shift is allowed (the estimate follows the new inputs); a change in how inputs relate to the
target is not seen until labels arrive, so the estimate is compared with the live metric
whenever there are labels.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

ASSUMPTION_CLASSIFICATION = ("estimated from the served probabilities (CBPE): assumes they "
                             "are calibrated and that there is no concept drift")
ASSUMPTION_REGRESSION = ("estimated from the served interval's half-width: assumes centred "
                         "normal errors of constant spread, a calibrated interval and no "
                         "concept drift")


def expected_confusion(proba, threshold: float) -> dict[str, float]:
    """Expected ``tn``, ``fp``, ``fn``, ``tp`` of calibrated probabilities at ``threshold``."""
    p = np.asarray(proba, dtype=float)
    pred = p >= threshold
    return {"tn": float(np.sum(1 - p[~pred])), "fp": float(np.sum(1 - p[pred])),
            "fn": float(np.sum(p[~pred])), "tp": float(np.sum(p[pred]))}


def expected_roc_auc(proba) -> float:
    """Area under the expected ROC curve of calibrated probabilities (NaN if degenerate)."""
    p = np.asarray(proba, dtype=float)
    scores, inverse = np.unique(-p, return_inverse=True)  # distinct scores, highest first
    pos = np.bincount(inverse, weights=p, minlength=len(scores))
    neg = np.bincount(inverse, weights=1 - p, minlength=len(scores))
    if pos.sum() <= 0 or neg.sum() <= 0:
        return float("nan")
    tpr = np.concatenate([[0.0], np.cumsum(pos) / pos.sum()])
    fpr = np.concatenate([[0.0], np.cumsum(neg) / neg.sum()])
    return float(np.trapz(tpr, fpr))


def estimate_classification(proba, threshold: float) -> dict[str, float]:
    """Expected confusion matrix, accuracy, precision, recall, F1 and ROC AUC."""
    cm = expected_confusion(proba, threshold)
    n = sum(cm.values())
    tp, fp, fn = cm["tp"], cm["fp"], cm["fn"]
    out = dict(cm)
    out["accuracy"] = (tp + cm["tn"]) / n if n else float("nan")
    out["precision"] = tp / (tp + fp) if tp + fp else 0.0
    out["recall"] = tp / (tp + fn) if tp + fn else 0.0
    out["f1"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    out["roc_auc"] = expected_roc_auc(proba)
    return out


def estimate_regression(lower, upper, level: float) -> dict[str, float]:
    """Expected RMSE (and MAE) from the served interval's half-width at nominal ``level``.

    The half-width is the largest logged one: intervals clipped to the target range are
    narrower than the model's own, which would understate the error.
    """
    half = float(np.nanmax((np.asarray(upper, dtype=float) - np.asarray(lower, dtype=float))
                           / 2))
    sigma = half / stats.norm.ppf(0.5 + level / 2)
    return {"rmse": sigma, "mae": sigma * float(np.sqrt(2 / np.pi))}
