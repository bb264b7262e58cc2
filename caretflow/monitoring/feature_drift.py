"""Input and prediction drift: PSI against the training reference plus a test per type.

PSI (``caretflow.drift.psi``, the server's measure) says how large a shift is; a test says
whether it is more than sampling noise: two-sample Kolmogorov–Smirnov for numbers (against
the training split's values when they can be read, else a chi-squared test on the
reference's decile bins), chi-squared goodness of fit for categories (against the reference
shares) and for whole numbers binned one bin per value (flags, counts: KS assumes a
continuous distribution). scipy, not Evidently: Evidently installs beside our pins but
brings a large dependency tree (its own plotting, NLTK, a web UI) for a handful of tests we need.

A feature is **flagged** when both hold: its test rejects at ``alpha`` after a Bonferroni
correction over the features (so an unshifted sample raises no alarm in about
``1 - alpha`` of windows, whatever the number of features), and PSI is at least
``PSI_WARN`` (so a large sample does not flag a shift too small to matter).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from caretflow.drift import bin_edges, psi, training_reference

PSI_WARN, PSI_DRIFT = 0.1, 0.25  # the server's thresholds (app.health_report)
ALPHA = 0.05
MIN_ROWS = 50
KS_SAMPLE = 20_000


def _chi2(observed: np.ndarray, shares: np.ndarray) -> tuple[float, float]:
    expected = np.clip(np.asarray(shares, dtype=float), 1e-4, None)
    expected = expected / expected.sum() * observed.sum()
    result = stats.chisquare(observed, expected)
    return float(result.statistic), float(result.pvalue)


def bin_counts(reference: dict, values: pd.Series) -> np.ndarray:
    """Counts of ``values`` in the reference's bins (numeric) or categories (plus others)."""
    if reference["kind"] == "category":
        counts = values.astype(str).value_counts()
        known = [int(counts.get(c, 0)) for c in reference["categories"]]
        return np.array(known + [int(len(values) - sum(known))])
    return np.histogram(values.astype(float), bins=bin_edges(reference))[0]


def feature_drift(reference: dict, values, train_values=None) -> dict:
    """PSI and a test of one feature's current values against its training reference.

    Args:
        reference: the feature's entry of the model's training reference.
        values: current values (None dropped).
        train_values: the training split's values of the feature (numbers: KS against them).

    Returns:
        ``psi``, ``test``, ``statistic``, ``p_value``, ``rows``.
    """
    current = pd.Series(values).dropna()
    out = {"psi": psi(reference, current), "rows": int(len(current))}
    if reference["kind"] == "category":
        observed = bin_counts(reference, current)
        stat, p = _chi2(observed, [*reference["shares"], 0.0])
        return {**out, "test": "chi-squared", "statistic": stat, "p_value": p}
    if "values" in reference:
        stat, p = _chi2(bin_counts(reference, current), reference["shares"])
        return {**out, "test": "chi-squared per value", "statistic": stat, "p_value": p}
    if train_values is not None and len(train_values):
        rng = np.random.default_rng(0)
        ref = np.asarray(train_values, dtype=float)
        if len(ref) > KS_SAMPLE:
            ref = rng.choice(ref, KS_SAMPLE, replace=False)
        result = stats.ks_2samp(current.astype(float), ref)
        return {**out, "test": "Kolmogorov-Smirnov", "statistic": float(result.statistic),
                "p_value": float(result.pvalue)}
    stat, p = _chi2(bin_counts(reference, current), reference["shares"])
    return {**out, "test": "chi-squared on reference deciles", "statistic": stat, "p_value": p}


def input_drift(reference: dict, current: pd.DataFrame, train: pd.DataFrame | None = None,
                alpha: float = ALPHA) -> dict[str, dict]:
    """``feature_drift`` of every referenced feature, with the ``flagged`` verdict."""
    features = [c for c in reference if c in current]
    out = {}
    for col in features:
        train_values = train[col].dropna() if train is not None and col in train else None
        out[col] = feature_drift(reference[col], current[col], train_values)
    for d in out.values():
        d["flagged"] = bool(d["rows"] >= MIN_ROWS and d["p_value"] < alpha / len(out)
                            and d["psi"] >= PSI_WARN)
        d["level"] = ("drift" if d["psi"] >= PSI_DRIFT else "warn" if d["psi"] >= PSI_WARN
                      else "ok")
    return out


def output_reference(values) -> dict:
    """A training-reference entry (decile bins) for a model output, e.g. the probabilities."""
    frame = pd.DataFrame({"output": np.asarray(values, dtype=float)})
    return training_reference(frame, {"output": {"type": "float"}})["output"]


def prediction_drift(reference_values, current_values) -> dict:
    """PSI and KS of the current outputs against reference outputs (same model)."""
    ref = np.asarray(reference_values, dtype=float)
    out = feature_drift(output_reference(ref), current_values, ref)
    out["flagged"] = bool(out["rows"] >= MIN_ROWS and out["p_value"] < ALPHA
                          and out["psi"] >= PSI_WARN)
    return out
