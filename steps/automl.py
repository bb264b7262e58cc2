"""PyCaret ``compare_models`` as a model search: it picks the estimator, caretflow fits it.

PyCaret's own experiment logging is not used (it breaks on MLflow 3); the winner is
cloned unfitted into caretflow's pipeline, calibrated and logged like every version.
"""

from __future__ import annotations

import logging

import pandas as pd
from omegaconf import DictConfig
from sklearn.base import clone

from steps.build import make_pipeline

log = logging.getLogger(__name__)


def select_estimator(cfg: DictConfig, X: pd.DataFrame, y: pd.Series):
    """Run compare_models on caretflow's features; return (unfitted winner, leaderboard)."""
    task = cfg.dataset.task
    include = (cfg.profile.automl.include or cfg.model.automl.include)[task]
    sort = cfg.model.automl.sort[task]
    # Features exactly as the final pipeline computes them (fitted on training rows only).
    features = make_pipeline(cfg, estimator=None, task=task)
    prep = features[:-1] if len(features.steps) > 1 else None
    prep = _without_resampler(prep)
    matrix = prep.fit_transform(X, y) if prep is not None else X
    names = list(prep.steps[-1][1].get_feature_names_out()) if prep is not None else list(X)
    frame = pd.DataFrame(matrix, columns=names)
    frame["__target__"] = y.to_numpy()

    exp = _experiment(task)
    log.info(
        "%s: PyCaret compare_models over %s (%d folds, sort=%s)",
        cfg.version_name,
        include,
        cfg.profile.automl.folds,
        sort,
    )
    exp.setup(
        data=frame,
        target="__target__",
        session_id=cfg.seed,
        fold=cfg.profile.automl.folds,
        preprocess=False,
        html=False,
        verbose=False,
        n_jobs=cfg.n_jobs,
        log_experiment=False,
        fold_shuffle=True,
    )
    best = exp.compare_models(include=list(include), sort=sort, n_select=1, verbose=False)
    board = exp.pull()
    log.info("%s: PyCaret leaderboard\n%s", cfg.version_name, board.to_string())
    return clone(best), board


def _experiment(task: str):
    if task == "classification":
        from pycaret.classification import ClassificationExperiment

        return ClassificationExperiment()
    from pycaret.regression import RegressionExperiment

    return RegressionExperiment()


def _without_resampler(prep):
    if prep is None:
        return None
    kept = [(n, s) for n, s in prep.steps if n != "resample"]
    return type(prep)(kept) if kept else None
