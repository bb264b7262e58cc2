"""The plot of ``bench/retrain_scenario.py``: rolling live ROC AUC over the drifting scenario."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

WINDOW = 300


def rolling_auc(answers: list[dict], truths: list, window: int = WINDOW) -> np.ndarray:
    """ROC AUC of the last ``window`` records at each record (NaN until full or one-class)."""
    p = np.array([a["probability"] for a in answers], float)
    y = np.asarray(truths, int)
    out = np.full(len(y), np.nan)
    for i in range(window, len(y) + 1):
        if 0 < y[i - window:i].sum() < window:
            out[i - 1] = roc_auc_score(y[i - window:i], p[i - window:i])
    return out


def rolling_plot(data: dict, figures: dict, path: Path) -> None:
    """Served traffic, then the fresh post-drift records scored by both versions."""
    n = len(data["served"])
    fresh_x = np.arange(n, n + len(data["as_new"]))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(np.arange(n), rolling_auc(data["served"], data["truths"]),
            label=f"served: old champion v{figures['old_version']}")
    ax.plot(fresh_x, rolling_auc(data["as_old"], data["fresh_truths"]), "--",
            label=f"old champion v{figures['old_version']} on the fresh records")
    ax.plot(fresh_x, rolling_auc(data["as_new"], data["fresh_truths"]),
            label=f"retrained v{figures['new_version']} (serving)")
    ax.axvline(data["change_at"], color="grey", ls=":", label="change point")
    ax.axvline(n, color="black", ls=":", label="retrain promoted")
    ax.axhline(0.80, color="red", lw=0.8, label="gate roc_auc 0.80")
    ax.set_xlabel("record (replay order)")
    ax.set_ylabel(f"live ROC AUC, last {WINDOW} labels")
    ax.set_title(figures["scenario"], fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
