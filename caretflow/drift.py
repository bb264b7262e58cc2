"""Training reference per input feature, and the population stability index against it."""

from __future__ import annotations

import numpy as np
import pandas as pd

N_BINS = 10
EPS = 1e-4


def training_reference(X: pd.DataFrame, schema: dict) -> dict[str, dict]:
    """Bin edges and shares (numeric) or category shares, from the training rows."""
    ref: dict[str, dict] = {}
    for col, spec in schema.items():
        if col not in X:
            continue
        values = X[col]
        if spec["type"] == "category":
            shares = values.astype(str).value_counts(normalize=True)
            ref[col] = {
                "kind": "category",
                "categories": list(spec["categories"]),
                "shares": [float(shares.get(c, 0.0)) for c in spec["categories"]],
            }
        else:
            edges = np.unique(np.quantile(values.astype(float), np.linspace(0, 1, N_BINS + 1)))
            counts = np.histogram(values.astype(float), bins=_open(edges))[0]
            ref[col] = {
                "kind": "numeric",
                "edges": edges[1:-1].tolist(),
                "shares": (counts / counts.sum()).tolist(),
            }
    return ref


def _open(edges: np.ndarray) -> np.ndarray:
    inner = edges[1:-1]
    return np.concatenate([[-np.inf], inner, [np.inf]])


def psi(reference: dict, values) -> float:
    """Population stability index of ``values`` against one feature's reference."""
    expected = np.asarray(reference["shares"], dtype=float)
    values = pd.Series(values)
    if reference["kind"] == "category":
        shares = values.astype(str).value_counts(normalize=True)
        actual = np.array([shares.get(c, 0.0) for c in reference["categories"]])
    else:
        bins = np.concatenate([[-np.inf], reference["edges"], [np.inf]])
        counts = np.histogram(values.astype(float), bins=bins)[0]
        actual = counts / max(counts.sum(), 1)
    expected, actual = np.clip(expected, EPS, None), np.clip(actual, EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
