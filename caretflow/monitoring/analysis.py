"""One version over one window: drift, live metrics with intervals, estimated metrics, A/B.

Pure functions of data frames read from the prediction log (``log_reader``) and of what the
model carries (contract, training reference); ``steps.monitor`` logs the result.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from caretflow import ab_arms, ab_stats
from caretflow.metrics import calibration_metrics
from caretflow.monitoring import cbpe
from caretflow.monitoring.feature_drift import input_drift, prediction_drift

LIVE = {"classification": ("roc_auc", "accuracy", "f1"), "regression": ("rmse", "mae")}
# Smallest difference worth promoting per metric: the server's defaults (GET /ab_test).
BUCKETS = 8


def threshold(contract: dict) -> float:
    """The classification threshold the contract states (0.5 when it states none)."""
    return float(contract["decision"].get("threshold", 0.5))


def _score_column(task: str, frame: pd.DataFrame, prefix: str = "", suffix: str = ""):
    name = "probability" if task == "classification" else "prediction"
    return frame[f"{prefix}{name}{suffix}"].to_numpy(dtype=float)


def live_metrics(contract: dict, labels: pd.DataFrame) -> dict[str, dict]:
    """Metric -> ``{value, ci_low, ci_high}`` (95 %) over labelled rows (``ab_stats``)."""
    task, out = contract["task"], {}
    if len(labels) < 2:
        return out
    y, score = labels["true_value"].to_numpy(float), _score_column(task, labels)
    pred = labels["prediction"].to_numpy(float)
    if task == "classification":
        keep = ~np.isnan(score)
        y, score, pred = y[keep], score[keep], pred[keep]
    for metric in LIVE[task]:
        try:
            out[metric] = ab_stats.interval(*ab_stats.estimate(metric, y, score, pred))
        except ValueError:  # one class only: no ROC AUC
            continue
    if task == "classification" and len(y):
        out.update({k: {"value": v} for k, v in calibration_metrics(y, score).items()})
    return out


def estimated_metrics(contract: dict, scored: pd.DataFrame) -> dict[str, float]:
    """CBPE (classification) or interval-based (regression) estimates over scored rows."""
    if scored.empty:
        return {}
    if contract["task"] == "classification":
        proba = scored["out_probability"].dropna().to_numpy(float)
        return cbpe.estimate_classification(proba, threshold(contract)) if len(proba) else {}
    if "out_lower" not in scored or scored["out_lower"].isna().all():
        return {}
    level = float(contract["decision"].get("interval_level") or 0.9)
    return cbpe.estimate_regression(scored["out_lower"], scored["out_upper"], level)


def over_time(contract: dict, scored: pd.DataFrame, labels: pd.DataFrame, since: float,
              until: float, buckets: int = BUCKETS) -> list[dict]:
    """Estimated (by prediction time) and live (by feedback time) metrics per time slice."""
    edges = np.linspace(since, until, buckets + 1)
    primary = LIVE[contract["task"]]
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        s = scored[(scored["created_at"] >= lo) & (scored["created_at"] < hi)] if len(
            scored) else scored
        lab = labels[(labels["created_at"] >= lo) & (labels["created_at"] < hi)] if len(
            labels) else labels
        est = estimated_metrics(contract, s)
        live = live_metrics(contract, lab)
        out.append({"start": float(lo), "end": float(hi), "rows": int(len(s)),
                    "labels": int(len(lab)),
                    "estimated": {m: est[m] for m in primary if m in est},
                    "live": {m: live[m]["value"] for m in primary if m in live}})
    return out


def version_report(contract: dict, reference: dict, scored: pd.DataFrame,
                   labels: pd.DataFrame, since: float, until: float,
                   train: pd.DataFrame | None = None,
                   output_reference: tuple[str, np.ndarray] | None = None) -> dict:
    """Everything the monitor reports for one version over one window.

    Args:
        contract: the version's contract.
        reference: the version's training reference (``CaretflowModel.reference``).
        scored: its scored records of the window (``LogReader.scored``).
        labels: its label rows of the window (``LogReader.labelled``, this version only).
        since: window start (epoch seconds).
        until: window end.
        train: the training split (KS reference for numeric features), if readable.
        output_reference: ``(what it is, outputs)`` to compare the served outputs with.

    Returns:
        ``rows``, ``labels``, ``drift``, ``prediction_drift``, ``live``, ``estimated``
        (all scored records), ``estimated_labelled`` (the labelled ones: against ``live`` it
        measures the estimate's error), ``estimated_assumption``, ``over_time``.
    """
    task = contract["task"]
    features = [c for c in contract["features"] if c in scored]
    drift = input_drift(reference or {}, scored[features], train) if len(scored) else {}
    pdrift = None
    if output_reference is not None and len(scored):
        source, ref_values = output_reference
        pdrift = {"reference": source, **prediction_drift(ref_values,
                                                          _score_column(task, scored, "out_"))}
    return {"rows": int(len(scored)), "labels": int(len(labels)), "drift": drift,
            "prediction_drift": pdrift, "live": live_metrics(contract, labels),
            "estimated": estimated_metrics(contract, scored),
            "estimated_labelled": estimated_metrics(contract, labels.rename(
                columns={k: f"out_{k}" for k in ("probability", "lower", "upper")})),
            "estimated_assumption": (cbpe.ASSUMPTION_CLASSIFICATION if task == "classification"
                                     else cbpe.ASSUMPTION_REGRESSION),
            "over_time": over_time(contract, scored, labels, since, until)}


def ab_verdict(contract: dict, labels: pd.DataFrame, champion: str,
               challenger: str) -> dict | None:
    """``ab_stats.verdict`` over the window's A/B arms (paired over shadow scores), or None.

    None when neither arm holds a label in the window.
    """
    if labels.empty:
        return None
    task, metric = contract["task"], contract["primary_metric"]
    a, b, paired = ab_arms.arms(labels, task, champion, challenger)
    if not len(a["y"]) and not len(b["y"]) and paired is None:
        return None
    return ab_stats.verdict(metric, list(LIVE[task]), a, b, paired,
                            effect=ab_stats.DEFAULT_EFFECT.get(metric, 0.02))


def finite(value) -> bool:
    """Whether ``value`` is a real number that MLflow can log."""
    return isinstance(value, int | float) and math.isfinite(value)
