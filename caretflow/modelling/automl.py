"""PyCaret ``compare_models`` as a model search: it picks the estimator, caretflow fits it.

PyCaret's own experiment logging is not used (it breaks on MLflow 3); the winner (or a
soft-voting blend of the top models, when that scores better by CV:
``caretflow.modelling.ensemble``) is cloned unfitted into caretflow's pipeline, calibrated and
logged like every version.
"""

from __future__ import annotations

import logging

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from sklearn.base import clone

from caretflow.modelling import ensemble
from caretflow.modelling.build import make_pipeline

log = logging.getLogger(__name__)


def select_estimator(cfg: DictConfig, X: pd.DataFrame, y: pd.Series):
    """Run compare_models on caretflow's features, then try blends of the top models.

    Returns:
        ``(estimator, leaderboard, choice, cv_scores)``: the unfitted single winner or
        blend, PyCaret's leaderboard, the chosen candidate's name and each candidate's
        CV score (empty when no blend was tried).
    """
    task = cfg.dataset.task
    include = (cfg.profile.automl.include or cfg.model.automl.include)[task]
    sort = cfg.model.automl.sort[task]
    blend = cfg.profile.automl.get("blend") or cfg.model.automl.get("blend") or {}
    blend = OmegaConf.to_container(blend, resolve=True) if blend else {}
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
    n_select = max([1, blend.get("pairs") or 0, *(blend.get("top") or [])])
    top = exp.compare_models(include=list(include), sort=sort, n_select=n_select, verbose=False)
    board = exp.pull()
    log.info("%s: PyCaret leaderboard\n%s", cfg.version_name, board.to_string())
    ranked = [clone(m) for m in (top if isinstance(top, list) else [top])]
    estimator, choice, scores = ensemble.choose(cfg, X, y, ranked, blend)
    return estimator, board, choice, scores


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
