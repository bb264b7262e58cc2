"""Calibrated probabilities: Platt scaling fitted on out-of-fold training predictions.

A strictly increasing map of the pipeline's probability of class 1, so the ranking (ROC AUC)
is unchanged while the probabilities become usable as probabilities (label-free performance
estimation, reliability). Stored as two numbers, so the logged model stays plain.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

EPS = 1e-6
METHODS = ("none", "platt")


def _logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def fit(method: str, y, proba) -> dict | None:
    """The calibration of ``proba`` (out-of-fold probabilities of class 1) against ``y``.

    Args:
        method: ``platt`` or ``none``.
        y: true labels (0/1).
        proba: out-of-fold probabilities of class 1 (never in-sample ones).

    Returns:
        ``{"method": "platt", "a": ..., "b": ...}``, or None for ``none``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown probability calibration {method!r}: expected {METHODS}")
    if method == "none":
        return None
    lr = LogisticRegression(C=1e6, solver="lbfgs", max_iter=1000)
    lr.fit(_logit(proba).reshape(-1, 1), np.asarray(y).astype(int))
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    if a <= 0:  # a non-increasing map would reorder the records: keep them as they are
        return None
    return {"method": "platt", "a": a, "b": b}


def apply(calibration: dict | None, proba) -> np.ndarray:
    """Calibrated probabilities of class 1 (unchanged without a calibration)."""
    proba = np.asarray(proba, dtype=float)
    if not calibration:
        return proba
    return 1.0 / (1.0 + np.exp(-(calibration["a"] * _logit(proba) + calibration["b"])))
