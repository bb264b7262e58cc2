"""Training reference per input feature, and the population stability index against it.

Numeric features get decile bins, except whole-number features with at most
``MAX_DISCRETE`` distinct training values (flags, counts): those get one bin per value,
split halfway between neighbouring values, so a 0/1 flag is two bins and a shift of its
share shows in the PSI (decile edges collapse to a single bin there).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

N_BINS = 10
MAX_DISCRETE = 20
EPS = 1e-4


def _numeric_reference(values: pd.Series) -> dict:
    """Bin edges (inner, ascending) and training shares of one numeric feature."""
    x = values.astype(float).dropna().to_numpy()
    distinct = np.unique(x)
    extra: dict = {}
    if len(distinct) <= MAX_DISCRETE and np.array_equal(distinct, np.round(distinct)):
        edges = (distinct[:-1] + distinct[1:]) / 2  # one bin per value
        extra["values"] = distinct.tolist()
    else:
        edges = np.unique(np.quantile(x, np.linspace(0, 1, N_BINS + 1)))[1:-1]
    counts = np.histogram(x, bins=bin_edges({"edges": edges}))[0]
    return {"kind": "numeric", "edges": edges.tolist(),
            "shares": (counts / max(counts.sum(), 1)).tolist(), **extra}


def training_reference(X: pd.DataFrame, schema: dict) -> dict[str, dict]:
    """Bin edges and shares (numeric) or category shares, from the training rows.

    Args:
        X: the training rows.
        schema: the data set's input schema (``type``, ``categories``).

    Returns:
        Per feature: ``kind`` ``category`` with ``categories`` and ``shares``, or
        ``numeric`` with inner ``edges``, ``shares`` per bin and, for a feature binned
        one bin per value, those ``values``.
    """
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
            ref[col] = _numeric_reference(values)
    return ref


def bin_edges(reference: dict) -> np.ndarray:
    """A numeric reference's bins for ``np.histogram``: its inner edges, open at both ends."""
    return np.concatenate([[-np.inf], np.asarray(reference["edges"], dtype=float), [np.inf]])


def psi(reference: dict, values) -> float:
    """Population stability index of ``values`` against one feature's reference."""
    expected = np.asarray(reference["shares"], dtype=float)
    values = pd.Series(values)
    if reference["kind"] == "category":
        shares = values.astype(str).value_counts(normalize=True)
        actual = np.array([shares.get(c, 0.0) for c in reference["categories"]])
    else:
        counts = np.histogram(values.astype(float), bins=bin_edges(reference))[0]
        actual = counts / max(counts.sum(), 1)
    expected, actual = np.clip(expected, EPS, None), np.clip(actual, EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
