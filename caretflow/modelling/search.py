"""Hyperparameter search over the pipeline's estimator: grid, random or Optuna."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from sklearn.model_selection import (
    KFold,
    ParameterGrid,
    ParameterSampler,
    StratifiedKFold,
    cross_val_score,
)

from caretflow.config import to_container
from caretflow.modelling.encoded_folds import shared_folds
from caretflow.modelling.fold_fits import split_pipeline, with_params

log = logging.getLogger(__name__)

SCORING = {"classification": "roc_auc", "regression": "neg_root_mean_squared_error"}


def cv_splitter(task: str, folds: int, seed: int):
    """Stratified folds for classification, plain shuffled folds for regression."""
    cls = StratifiedKFold if task == "classification" else KFold
    return cls(n_splits=folds, shuffle=True, random_state=seed)


def cv_score(pipeline, X: pd.DataFrame, y: pd.Series, task: str, cv, n_jobs=None) -> float:
    """Mean CV score of ``pipeline`` in the metric's own units (ROC AUC, or RMSE >= 0)."""
    score = float(np.mean(cross_val_score(pipeline, X, y, scoring=SCORING[task], cv=cv,
                                          n_jobs=n_jobs)))
    return -score if task == "regression" else score


def run_search(cfg: DictConfig, pipeline, X: pd.DataFrame, y: pd.Series, task: str, label: str):
    """Search the model's space; return (best unfitted pipeline, best params, results table).

    Candidates are scored on the pipeline's feature steps fitted inside each search fold
    once (``caretflow.modelling.encoded_folds.shared_folds``); candidates x folds run as
    joblib tasks (a Dask cluster with ``compute=dask``).
    """
    search = to_container(cfg.model, "search")
    space = {_param_name(k): _values(k, v, cfg.seed) for k, v in search["space"].items()}
    if "resample" in space and "resample" not in pipeline.named_steps:
        del space["resample"]  # nothing to switch: this data set does not resample
    method = search.get("method", "grid")
    if method not in ("grid", "random", "optuna"):
        raise ValueError(f"model.search.method: unknown method {method!r} (grid, random, optuna)")
    cv = cv_splitter(task, cfg.profile.search_folds, cfg.seed)
    prep, tail = split_pipeline(pipeline)
    folds = shared_folds(prep, X, y, cv, task, cfg.n_jobs)
    cap = cfg.profile.get("max_candidates")
    n_iter = min(int(search.get("n_iter", 20)), cap or 10**9)
    if method == "optuna":
        batch = int(search.get("parallel_trials", 1))
        return _optuna(pipeline, tail, space, folds, n_iter, cfg.seed, label, batch=batch)
    if method == "grid" and cap and len(ParameterGrid(space)) > cap:
        method, n_iter = "random", cap
    if method == "grid":
        chosen = list(ParameterGrid(space))
    else:
        chosen = list(ParameterSampler(space, n_iter=n_iter, random_state=cfg.seed))
    log.info("%s: %s search, %d candidates x %d folds (features fitted per fold in %.1fs)",
             label, method, len(chosen), folds.n_splits, folds.seconds)
    scores = folds.fold_scores([with_params(tail, p) for p in chosen])
    table = _table(chosen, scores)
    best_index = int(np.argmax(table["mean_test_score"].to_numpy()))
    best = _readable(chosen[best_index])
    log.info("%s: best %s = %.4f with %s", label, SCORING[task],
             table["mean_test_score"].iloc[best_index], best)
    return pipeline.set_params(**chosen[best_index]), best, table


def _table(chosen: list[dict], scores: list[list[float]]) -> pd.DataFrame:
    """One row per candidate: its params and its mean and spread of fold scores."""
    return pd.DataFrame({
        "params": chosen,
        "mean_test_score": [float(np.mean(s)) for s in scores],
        "std_test_score": [float(np.std(s)) for s in scores],
    })


def _readable(params: dict) -> dict:
    return {
        k.removeprefix("model__"): (v if isinstance(v, (int, float, str)) else type(v).__name__)
        for k, v in params.items()
    }


def _param_name(key: str) -> str:
    return key if key == "resample" else f"model__{key}"


def _values(key: str, values, seed: int) -> list:
    """Search values; ``resample: [smote, none]`` switches the resampling step itself."""
    if key != "resample":
        return list(values)
    from imblearn.over_sampling import SMOTE

    known = {"smote": SMOTE(random_state=seed), "none": "passthrough"}
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValueError(f"model.search.space.resample: unknown {unknown} (smote, none)")
    return [known[v] for v in values]


def _optuna(pipeline, tail, space, folds, n_trials, seed, label, batch=1):
    """Optuna TPE search; ``batch`` trials at a time, their folds as joblib tasks.

    Trials are asked ``batch`` at a time and told in trial order, so the sampled
    candidates depend on ``batch`` (``model.search.parallel_trials``) and the seed, never
    on where the folds run: locally or on a Dask cluster gives the same study.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def pick(trial) -> dict:
        # Optuna samples indices so that non-primitive choices (a SMOTE step) work too.
        return {k: v[trial.suggest_categorical(k, list(range(len(v))))] for k, v in space.items()}

    log.info("%s: optuna search, %d trials x %d folds (%d at a time)", label, n_trials,
             folds.n_splits, batch)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    tried, scores = [], []
    while len(study.trials) < n_trials:
        trials = [study.ask() for _ in range(min(batch, n_trials - len(study.trials)))]
        chosen = [pick(trial) for trial in trials]
        for trial, params, fold in zip(
            trials, chosen, folds.fold_scores([with_params(tail, p) for p in chosen]),
            strict=True,
        ):
            study.tell(trial, float(np.mean(fold)))
            tried.append(params)
            scores.append(fold)
            log.info("%s: optuna trial %d/%d = %.4f", label, trial.number + 1, n_trials,
                     float(np.mean(fold)))
    best_params = {k: space[k][i] for k, i in study.best_params.items()}
    return pipeline.set_params(**best_params), _readable(best_params), _table(tried, scores)
