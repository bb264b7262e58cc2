"""The monitoring report's PNGs: drift per feature, outputs, metrics over time, A/B arms.

Each function returns a matplotlib figure; ``save`` writes it and closes it.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from caretflow.monitoring.feature_drift import bin_counts, output_reference  # noqa: E402

REF, CUR = "#7f7f7f", "#1f77b4"


def save(fig, path: Path) -> Path:
    """Write ``fig`` as PNG to ``path`` and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _labels(reference: dict) -> list[str]:
    if reference["kind"] == "category":
        return [*map(str, reference["categories"]), "other"]
    if "values" in reference:  # one bin per value
        return [f"{v:g}" for v in reference["values"]]
    edges = [f"{e:.3g}" for e in reference["edges"]]
    if not edges:
        return ["all"]
    inner = [f"{a}-{b}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return [f"<{edges[0]}", *inner, f">={edges[-1]}"]


def _bars(ax, reference: dict, values: pd.Series | None, title: str) -> None:
    """Reference shares per bin (grey), beside the shares of ``values`` when given."""
    ref = list(reference["shares"]) + ([0.0] if reference["kind"] == "category" else [])
    x = np.arange(len(ref))
    if values is None:
        ax.bar(x, ref, 0.6, color=REF, label="training reference")
    else:
        counts = bin_counts(reference, pd.Series(values).dropna())
        ax.bar(x - 0.2, ref, 0.4, color=REF, label="training reference")
        ax.bar(x + 0.2, counts / max(counts.sum(), 1), 0.4, color=CUR, label="this window")
    ax.set_xticks(x, _labels(reference), rotation=60, fontsize=6)
    ax.set_title(title, fontsize=8)
    ax.tick_params(axis="y", labelsize=6)


def _grid(features: list[str]):
    cols = 3
    rows = max(1, math.ceil(len(features) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.6 * rows), squeeze=False)
    for ax in list(axes.flat)[len(features):]:
        ax.axis("off")
    return fig, axes


def drift_figure(reference: dict, current: pd.DataFrame, drift: dict, version: str):
    """Reference against current shares per bin of every feature, PSI and the verdict."""
    features = list(drift)
    fig, axes = _grid(features)
    for ax, col in zip(axes.flat, features, strict=False):
        d = drift[col]
        mark = " FLAGGED" if d["flagged"] else ""
        _bars(ax, reference[col], current[col], f"{col}: PSI {d['psi']:.3f}, "
              f"p {d['p_value']:.2g}{mark}")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(f"version {version}: input drift per feature", fontsize=10)
    return fig


def reference_figure(reference: dict):
    """The training reference alone, drawn as ``drift_figure`` draws its grey bars."""
    features = list(reference)
    fig, axes = _grid(features)
    for ax, col in zip(axes.flat, features, strict=False):
        _bars(ax, reference[col], None, col)
    fig.suptitle("training reference: share of the training split per bin", fontsize=10)
    return fig


def prediction_figure(reference_values, current_values, source: str, version: str):
    """Distribution of the served outputs against the reference outputs."""
    ref = output_reference(reference_values)
    fig, ax = plt.subplots(figsize=(6, 3))
    _bars(ax, ref, pd.Series(np.asarray(current_values, dtype=float)),
          f"version {version}: outputs vs {source}")
    ax.legend(fontsize=7)
    return fig


def _time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%m-%d %H:%M")


def metrics_over_time_figure(over_time: list[dict], metrics: tuple[str, ...], version: str):
    """Estimated (dashed) and live (solid) metrics per slice of the window."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    mid = [(b["start"] + b["end"]) / 2 for b in over_time]
    for i, metric in enumerate(metrics):
        color = f"C{i}"
        est = [b["estimated"].get(metric, np.nan) for b in over_time]
        live = [b["live"].get(metric, np.nan) for b in over_time]
        ax.plot(mid, est, "--o", color=color, ms=3, label=f"estimated {metric}")
        ax.plot(mid, live, "-s", color=color, ms=3, label=f"live {metric}")
    ax.set_xticks(mid, [_time(t) for t in mid], rotation=30, fontsize=7)
    ax.set(title=f"version {version}: estimated and live metrics over the window (UTC)")
    ax.legend(fontsize=6, ncol=2)
    return fig


def ab_figure(result: dict):
    """Each metric of both arms with its 95 % interval."""
    metrics = [m for m in result["champion"]["metrics"]
               if result["champion"]["metrics"].get(m) and result["challenger"]["metrics"].get(m)]
    fig, axes = plt.subplots(1, max(1, len(metrics)), figsize=(3 * max(1, len(metrics)), 3),
                             squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for x, arm in enumerate(("champion", "challenger")):
            m = result[arm]["metrics"][metric]
            ax.errorbar([x], [m["value"]], yerr=[[m["value"] - m["ci_low"]],
                                                  [m["ci_high"] - m["value"]]],
                        fmt="o", capsize=4, color=f"C{x}")
        ax.set_xticks([0, 1], [f"champion v{result['champion']['version']}",
                               f"challenger v{result['challenger']['version']}"], fontsize=7)
        ax.set_xlim(-0.5, 1.5)
        ax.set_title(metric, fontsize=9)
    fig.suptitle(f"A/B: {result['decision']}", fontsize=10)
    return fig


def quality_figure(quality: dict):
    """Records rejected by validation per field, stacked by reason code."""
    frame = pd.DataFrame(quality["by_reason"])
    table = frame.pivot_table(index="field", columns="reason", values="rows", aggfunc="sum",
                              fill_value=0)
    table = table.loc[table.sum(axis=1).sort_values().index]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1.6))
    table.plot.barh(stacked=True, ax=ax, width=0.7)
    ax.set(xlabel="records rejected", ylabel="",
           title=f"rejected at validation: {quality['records']} records in "
                 f"{quality['requests']} requests")
    ax.legend(title="reason", fontsize=7, title_fontsize=7)
    return fig
