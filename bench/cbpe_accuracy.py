"""How close CBPE's label-free estimates come to the realised metrics of the churn champion.

On the held-out test split of the registry's preprocess run, labels withheld: estimated
against realised ROC AUC, F1 and accuracy, on the split as it is, on covariate-shifted
samples of it (reweighted towards older customers; Germany doubled), and on a concept-drift
sample (labels flipped for customers over 50, where the estimate must fail and only live
labels can tell). Also the champion's calibration (Brier, ECE) on the split.

Usage: ``python -m bench.cbpe_accuracy --tracking-uri sqlite:///.../mlflow.db``; writes
``bench/results/cbpe_accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from caretflow import registry
from caretflow.metrics import calibration_metrics, classification_metrics
from caretflow.monitoring.cbpe import estimate_classification
from steps.preprocess import load_split

log = logging.getLogger("bench.cbpe_accuracy")
RESULTS = Path(__file__).parent / "results"
SHOWN = ("roc_auc", "f1", "accuracy")


def _sample(test: pd.DataFrame, weights: np.ndarray, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(test), size=n, replace=True, p=weights / weights.sum())
    return test.iloc[idx].reset_index(drop=True)


def scenarios(test: pd.DataFrame, target: str, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The held-out split, two covariate shifts and a concept drift of it."""
    n = len(test)
    older = np.exp((test["Age"].to_numpy() - 40) / 10)
    germany = np.where(test["Geography"] == "Germany", 2.0, 1.0)
    drift = test.copy()
    over_50 = drift["Age"] > 50
    drift.loc[over_50, target] = 1 - drift.loc[over_50, target]
    return {"held_out": test, "shift_age": _sample(test, older, n, seed),
            "shift_germany": _sample(test, germany, n, seed + 1), "concept_drift": drift}


def measure(tracking_uri: str) -> dict:
    mlflow.set_tracking_uri(tracking_uri)
    mv = MlflowClient().get_model_version_by_alias("churn", "champion")
    model = registry.load_model(f"models:/churn/{mv.version}")
    contract = model.contract
    test = load_split(mv.tags["preprocess_run_id"], "test")
    threshold = contract["decision"]["threshold"]
    out = {"model_version": mv.version, "version_name": mv.tags.get("version_name"),
           "estimator": mv.tags.get("estimator"), "rows": len(test), "scenarios": {}}
    for name, frame in scenarios(test, contract["target"]).items():
        proba = model.predict_proba(frame[contract["features"]])[:, 1]
        y = frame[contract["target"]].to_numpy()
        real = classification_metrics(y, proba, threshold)
        est = estimate_classification(proba, threshold)
        out["scenarios"][name] = {
            m: {"realised": real[m], "estimated": est[m], "gap": est[m] - real[m]} for m in SHOWN}
        log.info("%-14s %s", name, "  ".join(
            f"{m} real {real[m]:.3f} est {est[m]:.3f} gap {est[m] - real[m]:+.3f}" for m in SHOWN))
    y = test[contract["target"]].to_numpy()
    out["calibration"] = calibration_metrics(
        y, model.predict_proba(test[contract["features"]])[:, 1])
    log.info("calibration on the held-out split: %s", out["calibration"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--out", type=Path, default=RESULTS / "cbpe_accuracy.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = measure(args.tracking_uri)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
