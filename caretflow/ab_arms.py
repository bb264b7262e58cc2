"""Which labelled records form each arm of an A/B test (server and monitor alike).

Only records routed by the A/B test count (arms ``champion`` and ``challenger``: a random,
sticky split of the same traffic); shadow scores (the challenger scoring records the champion
answered) pair with the champion's score of the same record for a paired comparison.
"""

from __future__ import annotations

import pandas as pd


def _score(task: str, frame: pd.DataFrame, suffix: str = ""):
    name = "probability" if task == "classification" else "prediction"
    return frame[f"{name}{suffix}"].to_numpy(dtype=float)


def _arm(frame: pd.DataFrame, task: str, version: str) -> dict:
    return {"version": version, "y": frame["true_value"].to_numpy(float),
            "score": _score(task, frame), "pred": frame["prediction"].to_numpy(float)}


def arms(labels: pd.DataFrame, task: str, champion: str,
         challenger: str) -> tuple[dict, dict, dict | None]:
    """Both arms' labelled records and the shadow pairs (None without any).

    Args:
        labels: labelled scores with ``prediction_id``, ``arm``, ``model_version``,
            ``prediction``, ``probability``, ``true_value``.
        task: ``classification`` or ``regression``.
        champion: champion version.
        challenger: challenger version.
    """
    v = labels["model_version"].astype(str)
    a = labels[(labels["arm"] == "champion") & (v == champion)]
    b = labels[(labels["arm"] == "challenger") & (v == challenger)]
    shadow = labels[(labels["arm"] == "shadow") & (v == challenger)]
    served = labels[labels["arm"].isin(["default", "champion"]) & (v == champion)]
    pairs = served.merge(shadow, on="prediction_id", suffixes=("", "_b"))
    paired = None
    if len(pairs):
        paired = {"y": pairs["true_value"].to_numpy(float),
                  "champion": _score(task, pairs), "challenger": _score(task, pairs, "_b"),
                  "champion_pred": pairs["prediction"].to_numpy(float),
                  "challenger_pred": pairs["prediction_b"].to_numpy(float)}
    return _arm(a, task, champion), _arm(b, task, challenger), paired
