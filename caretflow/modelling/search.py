"""Hyperparameter search over the pipeline's estimator: grid, random or Optuna."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from omegaconf import DictConfig
from sklearn.base import clone
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    ParameterGrid,
    RandomizedSearchCV,
    StratifiedKFold,
    cross_val_score,
)

from caretflow.config import to_container

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
    """Search the model's space; return (best unfitted pipeline, best params, results table)."""
    search = to_container(cfg.model, "search")
    space = {_param_name(k): _values(k, v, cfg.seed) for k, v in search["space"].items()}
    if "resample" in space and "resample" not in pipeline.named_steps:
        del space["resample"]  # nothing to switch: this data set does not resample
    method = search.get("method", "grid")
    cv = cv_splitter(task, cfg.profile.search_folds, cfg.seed)
    cap = cfg.profile.get("max_candidates")
    n_iter = min(int(search.get("n_iter", 20)), cap or 10**9)
    scoring = SCORING[task]
    if method == "optuna":
        batch = int(search.get("parallel_trials", 1))
        return _optuna(pipeline, space, X, y, cv, scoring, n_iter, cfg.seed, label,
                       n_jobs=cfg.n_jobs, batch=batch)
    if method == "grid" and cap and len(ParameterGrid(space)) > cap:
        method, n_iter = "random", cap
    if method == "grid":
        searcher = GridSearchCV(pipeline, space, scoring=scoring, cv=cv, n_jobs=cfg.n_jobs)
    elif method == "random":
        searcher = RandomizedSearchCV(
            pipeline,
            space,
            n_iter=n_iter,
            scoring=scoring,
            cv=cv,
            n_jobs=cfg.n_jobs,
            random_state=cfg.seed,
        )
    else:
        raise ValueError(f"model.search.method: unknown method {method!r} (grid, random, optuna)")
    n_cand = len(ParameterGrid(space)) if method == "grid" else n_iter
    log.info("%s: %s search, %d candidates x %d folds", label, method, n_cand, cv.n_splits)
    searcher.fit(X, y)
    table = pd.DataFrame(searcher.cv_results_)[["params", "mean_test_score", "std_test_score"]]
    best = _readable(searcher.best_params_)
    log.info("%s: best %s = %.4f with %s", label, scoring, searcher.best_score_, best)
    return pipeline.set_params(**searcher.best_params_), best, table


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


def _fold_score(pipeline, X, y, split, scoring) -> float:
    """Score of one candidate on one fold (a joblib task: a process, or a Dask worker)."""
    return float(cross_val_score(pipeline, X, y, scoring=scoring, cv=[split])[0])


def _optuna(pipeline, space, X, y, cv, scoring, n_trials, seed, label, n_jobs=None, batch=1):
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
             cv.n_splits, batch)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    splits = list(cv.split(X, y))
    while len(study.trials) < n_trials:
        trials = [study.ask() for _ in range(min(batch, n_trials - len(study.trials)))]
        chosen = [pick(trial) for trial in trials]
        folds = Parallel(n_jobs=n_jobs)(
            delayed(_fold_score)(clone(pipeline).set_params(**params), X, y, split, scoring)
            for params in chosen
            for split in splits
        )
        for i, trial in enumerate(trials):
            score = float(np.mean(folds[i * len(splits) : (i + 1) * len(splits)]))
            study.tell(trial, score)
            log.info("%s: optuna trial %d/%d %s = %.4f", label, trial.number + 1, n_trials,
                     scoring, score)
    best_params = {k: space[k][i] for k, i in study.best_params.items()}
    table = pd.DataFrame(
        [
            {
                "params": {k: space[k][i] for k, i in t.params.items()},
                "mean_test_score": t.value,
                "std_test_score": np.nan,
            }
            for t in study.trials
        ]
    )
    return pipeline.set_params(**best_params), _readable(best_params), table
