"""Figures a user wants to look at, logged to a run with ``MlflowClient.log_figure``."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from sklearn import metrics as skm  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402


def _log(run_id: str, fig, path: str) -> None:
    fig.tight_layout()
    # tight_layout leaves a placeholder layout engine behind, which makes savefig draw
    # the whole figure once more before the real draw; the saved PNG is the same without.
    fig.set_layout_engine(None)
    MlflowClient().log_figure(run_id, fig, path)
    plt.close(fig)


def classification_plots(run_id: str, y, proba, threshold: float, prefix: str) -> None:
    """Confusion matrix, ROC, precision-recall and calibration curves."""
    y = np.asarray(y).astype(int)
    cm = skm.confusion_matrix(y, (proba >= threshold).astype(int), labels=[0, 1])
    fig, ax = plt.subplots(figsize=(4, 4))
    skm.ConfusionMatrixDisplay(cm, display_labels=[0, 1]).plot(ax=ax, colorbar=False)
    ax.set_title(f"threshold {threshold:.2f}")
    _log(run_id, fig, f"{prefix}/confusion_matrix.png")

    fig, ax = plt.subplots(figsize=(4, 4))
    skm.RocCurveDisplay.from_predictions(y, proba, ax=ax)
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    _log(run_id, fig, f"{prefix}/roc_curve.png")

    fig, ax = plt.subplots(figsize=(4, 4))
    skm.PrecisionRecallDisplay.from_predictions(y, proba, ax=ax)
    _log(run_id, fig, f"{prefix}/pr_curve.png")

    frac, mean_pred = calibration_curve(y, proba, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(mean_pred, frac, "o-", label="model")
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed share of 1", title="calibration")
    ax.legend()
    _log(run_id, fig, f"{prefix}/calibration.png")


def regression_plots(run_id: str, y, pred, prefix: str) -> None:
    """Residuals against prediction, and predicted against actual."""
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(pred, y - pred, s=6, alpha=0.4)
    ax.axhline(0, color="k", lw=1)
    ax.set(xlabel="predicted", ylabel="residual (actual - predicted)", title="residuals")
    _log(run_id, fig, f"{prefix}/residuals.png")

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(y, pred, s=6, alpha=0.4)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], "k:", lw=1)
    ax.set(xlabel="actual", ylabel="predicted", title="predicted vs actual")
    _log(run_id, fig, f"{prefix}/predicted_vs_actual.png")


def feature_importance_plot(run_id: str, names, importances, path: str) -> None:
    """Horizontal bar chart of the top 20 importances."""
    order = np.argsort(importances)[-20:]
    fig, ax = plt.subplots(figsize=(6, max(3, 0.3 * len(order))))
    ax.barh(np.asarray(names)[order], np.asarray(importances)[order])
    ax.set(xlabel="importance", title="feature importance")
    _log(run_id, fig, path)


def reliability_figure(y, proba, n_bins: int = 10, title: str = "reliability"):
    """Reliability diagram over equal-width bins with the records per bin; ECE in the title."""
    from caretflow.metrics import calibration_metrics, reliability_bins

    bins = reliability_bins(y, proba, n_bins)
    cal = calibration_metrics(y, proba, n_bins)
    used = bins["count"] > 0
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(4.5, 5), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfectly calibrated")
    ax.plot(bins["mean_predicted"][used], bins["observed"][used], "o-", label="model")
    ax.set(ylabel="observed share of 1", xlim=(0, 1), ylim=(0, 1),
           title=f"{title}: ECE {cal['ece']:.3f}, Brier {cal['brier']:.3f}")
    ax.legend(loc="upper left")
    width = 1 / n_bins
    hist.bar(bins["edges"][:-1] + width / 2, bins["count"], width=width * 0.9)
    hist.set(xlabel=f"predicted probability ({n_bins} equal-width bins)", ylabel="records")
    return fig


def reliability_plot(run_id: str, y, proba, path: str) -> None:
    """Log ``reliability_figure`` of the probabilities ``proba`` to ``path`` of a run."""
    _log(run_id, reliability_figure(np.asarray(y).astype(int), np.asarray(proba)), path)
