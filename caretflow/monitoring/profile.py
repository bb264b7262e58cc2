"""The data, seen before the model: a profile of the data set and its split.

``preprocess`` logs it as ``data/profile.html`` (the monitoring report's format) and
``data/*.png``: target balance or distribution per split, each feature against the target,
the correlation matrix, missing / out-of-range counts per schema column, and the training
reference: per feature the bins (deciles, or categories) and the training split's share in
each (``caretflow.drift.training_reference``), as ``data/reference.json`` and
``data/reference.png``. The model carries the same reference (``train`` computes it with the
same function from the same split); the monitor reads it from here and draws production
traffic against it with the same bars.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from caretflow.drift import training_reference  # noqa: E402
from caretflow.monitoring.figures import reference_figure, save  # noqa: E402
from caretflow.monitoring.report import STYLE, image, table  # noqa: E402

REFERENCE = "reference.json"


def quality(df: pd.DataFrame, schema: dict) -> list[list]:
    """Per schema column: missing values, values outside the schema, distinct values."""
    rows = []
    for col, spec in schema.items():
        values = df[col]
        if spec["type"] == "category":
            bad = int((~values.dropna().astype(str).isin([str(c) for c in spec["categories"]]))
                      .sum())
        else:
            num = pd.to_numeric(values, errors="coerce")
            low, high = spec.get("min", -np.inf), spec.get("max", np.inf)
            bad = int(((num < low) | (num > high)).sum())
        rows.append([col, spec["type"], int(values.isna().sum()), bad, int(values.nunique())])
    return rows


def _target_figure(train: pd.DataFrame, test: pd.DataFrame, target: str, task: str):
    fig, ax = plt.subplots(figsize=(6, 3))
    if task == "classification":
        shares = pd.DataFrame({s: d[target].value_counts(normalize=True)
                               for s, d in (("train", train), ("test", test))}).sort_index()
        shares.plot.bar(ax=ax, rot=0)
        ax.set_ylabel("share")
        ax.set_title(f"{target}: class balance by split")
    else:
        bins = np.histogram_bin_edges(train[target], bins=20)
        for name, d in (("train", train), ("test", test)):
            ax.hist(d[target], bins=bins, density=True, alpha=0.5, label=name)
        ax.legend()
        ax.set_title(f"{target}: distribution by split")
    return fig


def _features_figure(train: pd.DataFrame, schema: dict, target: str, task: str):
    cols = 3
    features = list(schema)
    rows = max(1, math.ceil(len(features) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.6 * rows), squeeze=False)
    for ax, col in zip(axes.flat, features, strict=False):
        if schema[col]["type"] == "category" or train[col].nunique() <= 6:
            rate = train.groupby(train[col].astype(str))[target].mean()
            rate.plot.bar(ax=ax, rot=45, color="#1f77b4", xlabel="")
            ax.set_ylabel(f"mean {target}", fontsize=7)
        elif task == "classification":
            bins = np.histogram_bin_edges(train[col].astype(float), bins=20)
            for label, part in train.groupby(target):
                ax.hist(part[col].astype(float), bins=bins, density=True, alpha=0.5,
                        label=f"{target}={label}")
            ax.legend(fontsize=6)
        else:
            ax.scatter(train[col], train[target], s=2, alpha=0.3)
            ax.set_ylabel(target, fontsize=7)
        ax.set_title(col, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(features):]:
        ax.axis("off")
    return fig


def _correlation_figure(train: pd.DataFrame, schema: dict, target: str):
    numeric = [c for c, s in schema.items() if s["type"] != "category"] + [target]
    corr = train[numeric].astype(float).corr()
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(corr, vmin=-1, vmax=1, cmap="coolwarm")
    ax.set_xticks(range(len(numeric)), numeric, rotation=60, fontsize=7)
    ax.set_yticks(range(len(numeric)), numeric, fontsize=7)
    for (i, j), v in np.ndenumerate(corr.to_numpy()):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax)
    ax.set_title("correlation (training split)")
    return fig


def write(train: pd.DataFrame, test: pd.DataFrame, ds: dict, folder: Path) -> list[Path]:
    """Write the profile's PNGs and ``profile.html`` into ``folder``; returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    schema, target, task = ds["schema"], ds["target"], ds["task"]
    pngs = [save(_target_figure(train, test, target, task), folder / "target.png"),
            save(_features_figure(train, schema, target, task), folder / "features.png"),
            save(_correlation_figure(train, schema, target), folder / "correlation.png")]
    reference = training_reference(train, schema)
    ref_json = folder / REFERENCE
    ref_json.write_text(json.dumps(reference, indent=1))
    pngs.append(save(reference_figure(reference), folder / "reference.png"))
    header = ["column", "type", "missing", "outside schema", "distinct"]
    sections = {
        "target": image(pngs[0], "target by split"),
        "features": image(pngs[1], "features against the target"),
        "correlation": image(pngs[2], "correlation matrix"),
        "reference": "<p>The bins the server's PSI and the monitor's drift tests compare "
                     f"traffic with ({REFERENCE}).</p>" + image(pngs[3], "training reference"),
        "quality": "<h3>train</h3>" + table(header, quality(train, schema))
        + "<h3>test</h3>" + table(header, quality(test, schema)),
    }
    body = "".join(f"<section id='{k}'><h2>{k.title()}</h2>{v}</section>"
                   for k, v in sections.items())
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>caretflow data profile: "
            f"{escape(ds['name'])}</title><style>{STYLE}</style></head><body><h1>Data profile: "
            f"{escape(ds['name'])}</h1><p>{len(train)} training and {len(test)} test rows.</p>"
            f"{body}</body></html>")
    page = folder / "profile.html"
    page.write_text(html)
    return [*pngs, ref_json, page]


def load_reference(preprocess_run_id: str) -> dict:
    """The training reference a preprocess run's profile logged (``data/reference.json``)."""
    import mlflow

    path = mlflow.artifacts.download_artifacts(run_id=preprocess_run_id,
                                               artifact_path=f"data/{REFERENCE}")
    return json.loads(Path(path).read_text())
