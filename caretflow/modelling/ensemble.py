"""Soft-voting blends of the automl leaderboard's best models, kept only when CV says so.

``compare_models`` ranks single estimators. A blend of a few of the best (the average of
their probabilities, or of their predictions for regression) often ranks a little higher.
Each candidate, the best single model and every blend, is scored by the same k-fold CV
on the training split inside caretflow's own pipeline; the best score wins and a tie
keeps the single model. The test split is never read.
"""

from __future__ import annotations

import logging

import pandas as pd
from omegaconf import DictConfig
from sklearn.base import clone
from sklearn.ensemble import VotingClassifier, VotingRegressor

from caretflow.modelling.build import make_pipeline, set_n_jobs
from caretflow.modelling.encoded_folds import shared_folds
from caretflow.modelling.fold_fits import split_pipeline
from caretflow.modelling.search import cv_splitter

log = logging.getLogger(__name__)
SINGLE = "single"


def soft_vote(estimators: list, task: str):
    """Unfitted soft-voting blend of ``estimators`` (named by class, in rank order)."""
    named = [(f"{type(e).__name__.lower()}_{i}", clone(e)) for i, e in enumerate(estimators)]
    if task == "classification":
        return VotingClassifier(named, voting="soft")
    return VotingRegressor(named)


def candidates(ranked: list, top=(), pairs: int = 0, task: str = "classification") -> dict:
    """The best single estimator and the blends to try against it.

    Args:
        ranked: unfitted estimators, best first.
        top: blend sizes ``n``: the top ``n`` models together.
        pairs: blend the winner with each model ranked 2..``pairs`` (a linear winner
            and a boosted runner-up can blend well where the top few are near copies).
        task: ``classification`` or ``regression``.

    Returns:
        Name -> unfitted estimator; blends are named by their members' ranks
        (``blend_1_2_3``, ``blend_1_4``: valid MLflow metric names).
    """
    groups = [tuple(range(int(n))) for n in sorted(set(top or ()))]
    groups += [(0, k - 1) for k in range(2, int(pairs or 0) + 1)]
    out = {SINGLE: clone(ranked[0])}
    for members in dict.fromkeys(groups):
        if len(members) >= 2 and max(members) < len(ranked):
            name = "blend_" + "_".join(str(r + 1) for r in members)
            out[name] = soft_vote([ranked[r] for r in members], task)
    return out


def members(name: str) -> tuple[int, ...]:
    """0-based leaderboard ranks of a candidate's members (``blend_1_4`` -> ``(0, 3)``)."""
    return (0,) if name == SINGLE else tuple(int(r) - 1 for r in name.split("_")[1:])


def choose(cfg: DictConfig, X: pd.DataFrame, y: pd.Series, ranked: list, blend: dict,
           scorer=None, known: dict | None = None, affordable=None):
    """Score the single winner and the blends by CV; return (estimator, name, cv scores).

    Args:
        cfg: the version's config (pipeline, folds ``profile.automl.folds``, seed, n_jobs).
        X: training features.
        y: training target.
        ranked: unfitted estimators, best first (the leaderboard's order).
        blend: ``{top: [n, ...], pairs: k}``, see ``candidates``; empty keeps the winner.
        scorer: ``estimator -> CV score``; None scores caretflow's whole pipeline around
            the estimator by k-fold CV (``profile.automl.folds``).
        known: candidate name -> CV score already measured (not scored again).
        affordable: ``member ranks -> bool``; a blend it refuses is skipped (time budget).

    Returns:
        The chosen unfitted estimator, its candidate name and every scored candidate's CV
        score (ROC AUC, or RMSE for regression).
    """
    task = cfg.dataset.task
    options = candidates(ranked, blend.get("top"), blend.get("pairs", 0), task)
    if len(options) == 1:
        return options[SINGLE], SINGLE, {}
    scorer = scorer or _pipeline_scorer(cfg, X, y)
    metric = cfg.dataset.primary_metric[task]
    scores = {k: v for k, v in (known or {}).items() if k in options}
    for name, estimator in options.items():
        if name in scores:
            continue
        if affordable is not None and not affordable(members(name)):
            log.info("%s: %s skipped: does not fit the time left", cfg.version_name, name)
            continue
        # Folds run in parallel, so each candidate's own estimators stay single-threaded.
        scores[name] = scorer(set_n_jobs(clone(estimator), 1))
        log.info("%s: %s cv %s %.4f", cfg.version_name, name, metric, scores[name])
    pick = (min if task == "regression" else max)(scores, key=scores.get)
    log.info("%s: keeping %s", cfg.version_name, pick)
    return options[pick], pick, scores


def _pipeline_scorer(cfg: DictConfig, X: pd.DataFrame, y: pd.Series):
    """CV score of caretflow's whole pipeline (the encoders fitted inside every fold)."""
    task = cfg.dataset.task
    cv = cv_splitter(task, cfg.profile.automl.folds, cfg.seed)

    def score(estimator) -> float:
        prep, tail = split_pipeline(make_pipeline(cfg, estimator, task))
        return shared_folds(prep, X, y, cv, task, cfg.n_jobs).score(tail)

    return score
