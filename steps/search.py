"""Hyperparameter search over the pipeline's estimator: grid, random or Optuna."""

from __future__ import annotations

import logging
import random

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    ParameterGrid,
    RandomizedSearchCV,
    StratifiedKFold,
    cross_val_score,
)

from steps.config import to_container

log = logging.getLogger(__name__)

SCORING = {"classification": "roc_auc", "regression": "neg_root_mean_squared_error"}


def cv_splitter(task: str, folds: int, seed: int):
    """Stratified folds for classification, plain shuffled folds for regression."""
    cls = StratifiedKFold if task == "classification" else KFold
    return cls(n_splits=folds, shuffle=True, random_state=seed)


def run_search(cfg: DictConfig, pipeline, X: pd.DataFrame, y: pd.Series, task: str, label: str):
    """Search the model's space; return (best unfitted pipeline, best params, results table)."""
    search = to_container(cfg.model, "search")
    space = {f"model__{k}": list(v) for k, v in search["space"].items()}
    method = search.get("method", "grid")
    cv = cv_splitter(task, cfg.profile.search_folds, cfg.seed)
    cap = cfg.profile.get("max_candidates")
    n_iter = min(int(search.get("n_iter", 20)), cap or 10**9)
    scoring = SCORING[task]
    if method == "optuna":
        return _optuna(pipeline, space, X, y, cv, scoring, n_iter, cfg.seed, label)
    if method == "grid" and cap and len(ParameterGrid(space)) > cap:
        method, n_iter = "random", cap
    if method == "grid":
        searcher = GridSearchCV(pipeline, space, scoring=scoring, cv=cv, n_jobs=cfg.n_jobs)
    elif method == "random":
        searcher = RandomizedSearchCV(pipeline, space, n_iter=n_iter, scoring=scoring, cv=cv,
                                      n_jobs=cfg.n_jobs, random_state=cfg.seed)
    else:
        raise ValueError(f"model.search.method: unknown method {method!r} (grid, random, optuna)")
    n_cand = len(ParameterGrid(space)) if method == "grid" else n_iter
    log.info("%s: %s search, %d candidates x %d folds", label, method, n_cand, cv.n_splits)
    searcher.fit(X, y)
    table = pd.DataFrame(searcher.cv_results_)[["params", "mean_test_score", "std_test_score"]]
    best = {k.removeprefix("model__"): v for k, v in searcher.best_params_.items()}
    log.info("%s: best %s = %.4f with %s", label, scoring, searcher.best_score_, best)
    return pipeline.set_params(**searcher.best_params_), best, table


def _optuna(pipeline, space, X, y, cv, scoring, n_trials, seed, label):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = random.Random(seed)

    def objective(trial):
        params = {k: trial.suggest_categorical(k, v) for k, v in space.items()}
        pipeline.set_params(**params)
        score = float(np.mean(cross_val_score(pipeline, X, y, scoring=scoring, cv=cv)))
        log.info("%s: optuna trial %d/%d %s = %.4f", label, trial.number + 1, n_trials,
                 scoring, score)
        return score

    sampler = optuna.samplers.TPESampler(seed=rng.randint(0, 2**31 - 1))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    table = pd.DataFrame(
        [{"params": t.params, "mean_test_score": t.value, "std_test_score": np.nan}
         for t in study.trials]
    )
    best = {k.removeprefix("model__"): v for k, v in study.best_params.items()}
    return pipeline.set_params(**study.best_params), best, table
