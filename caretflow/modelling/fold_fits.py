"""One candidate (or a group of them) fitted on one CV fold: predictions, scores, grouping.

A boosted model with ``n`` trees is the first ``n`` trees of the same model with more: with
the other parameters equal, XGBoost grows the same trees in the same order, so a grid over
``n_estimators`` needs one fit per fold, of the most trees, read at each size through
``iteration_range`` (``tests/test_caretflow_shared_folds.py`` checks the predictions equal
separate fits). ``stage_groups`` finds such candidates; ``fit_predict`` serves a group.
"""

from __future__ import annotations

import joblib
import numpy as np
from sklearn.base import clone
from sklearn.metrics import mean_squared_error, roc_auc_score


def fold_score(y, pred, task: str) -> float:
    """A fold's score as scikit-learn's scorers give it: ROC AUC, or minus the RMSE."""
    if task == "classification":
        return float(roc_auc_score(y, pred))
    return -float(np.sqrt(mean_squared_error(y, pred)))


def model_key(estimator) -> str:
    """What identifies a candidate's fits: its class and params, thread counts left out."""
    from caretflow.modelling.build import set_n_jobs

    return joblib.hash(set_n_jobs(clone(estimator), 1))


def _final(estimator):
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def _staged(estimator) -> bool:
    """Whether trees can be read by count: an XGBoost model after resamplers only."""
    before = estimator.steps[:-1] if hasattr(estimator, "steps") else []
    resamples = all(s in (None, "passthrough") or hasattr(s, "fit_resample") for _, s in before)
    return resamples and type(_final(estimator)).__module__.startswith("xgboost")


def _trees(estimator) -> int:
    return int(_final(estimator).get_params().get("n_estimators") or 100)


def stage_groups(estimators: list) -> list[list[int]]:
    """Indices of ``estimators`` grouped so that each group needs one fit per fold.

    XGBoost candidates equal but for ``n_estimators`` share a group (the one with the most
    trees first); every other candidate is a group of its own.
    """
    groups: dict[str, list[int]] = {}
    for index, estimator in enumerate(estimators):
        key = str(index)
        if _staged(estimator):
            copy = clone(estimator)
            _final(copy).set_params(n_estimators=0)
            key = model_key(copy)
        groups.setdefault(key, []).append(index)
    return [sorted(g, key=lambda i: -_trees(estimators[i])) for g in groups.values()]


def fit_predict(group: list, fold: tuple, task: str) -> list[np.ndarray]:
    """Validation predictions (probability of class 1, or value) of each member of a group.

    The first member (the most trees) is fitted; each member reads its own tree count.
    """
    Mf, yf, Mv, _ = fold
    fitted = clone(group[0]).fit(Mf, yf)
    if len(group) == 1:
        return [_positive(_predict(fitted, Mv, task), task)]
    model = _final(fitted)  # the steps before it only resample: prediction skips them
    return [_positive(_predict(model, Mv, task, iteration_range=(0, _trees(m))), task)
            for m in group]


def _predict(estimator, M, task: str, **kwargs):
    if task == "classification":
        return estimator.predict_proba(M, **kwargs)
    return estimator.predict(M, **kwargs)


def _positive(pred: np.ndarray, task: str) -> np.ndarray:
    return np.asarray(pred)[:, 1] if task == "classification" else np.asarray(pred, dtype=float)


def split_pipeline(pipeline) -> tuple:
    """``(feature steps or None, the rest)`` of a caretflow pipeline.

    The feature steps are every step before the resampler (or before the estimator); the
    rest is ``[resample ->] estimator``: the estimator itself when nothing else is left.
    """
    names = [name for name, _ in pipeline.steps]
    cut = names.index("resample") if "resample" in names else len(names) - 1
    prep = type(pipeline)(pipeline.steps[:cut]) if cut else None
    rest = pipeline.steps[cut:]
    return prep, (rest[0][1] if len(rest) == 1 else type(pipeline)(rest))


def with_params(tail, params: dict):
    """An unfitted copy of ``split_pipeline``'s rest with pipeline ``params`` set on it."""
    if hasattr(tail, "steps"):
        return clone(tail).set_params(**params)
    return clone(tail).set_params(**{k.removeprefix("model__"): v for k, v in params.items()})
