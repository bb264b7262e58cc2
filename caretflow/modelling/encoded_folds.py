"""Cross-validation folds whose features are fitted inside each fold, computed once.

The id encoders learn from targets, so they must be fitted on each fold's training rows
only, or the validation rows see their own targets through the encodings (the leaderboard
then favours the models that exploit that). Fitting them inside every fold for every
candidate repeats the same work: the encoders and the feature step are deterministic, so
each fold's encoded training and validation matrices are computed once here and every
candidate (and blend) is scored on them. Scores equal ``cross_val_score`` of the whole
pipeline on the same folds.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import get_scorer

from caretflow.modelling.budget import Probe
from caretflow.modelling.search import SCORING


def _encode(prep, X: pd.DataFrame, y: pd.Series, split) -> tuple:
    """One fold's encoded (fit rows, fit target, validation rows, validation target), seconds."""
    start = time.perf_counter()
    fit_idx, val_idx = split
    Xf, yf, Xv = X.iloc[fit_idx], y.iloc[fit_idx].to_numpy(), X.iloc[val_idx]
    if prep is None:  # estimators that read the raw columns themselves
        fold = (Xf, yf, Xv, y.iloc[val_idx].to_numpy())
    else:
        step = clone(prep)
        fold = (step.fit_transform(Xf, yf), yf, step.transform(Xv), y.iloc[val_idx].to_numpy())
    return fold, time.perf_counter() - start


def _fit_score(estimator, fold: tuple, scorer) -> float:
    Mf, yf, Mv, yv = fold
    return float(scorer(estimator.fit(Mf, yf), Mv, yv))


class EncodedFolds:
    """The feature steps fitted inside each CV fold, once, for many candidates.

    Args:
        prep: the unfitted feature steps of the pipeline (encoders + features), or None
            for estimators that read the raw columns (the folds then hold DataFrames).
        X: training features.
        y: training target.
        cv: a splitter (``caretflow.modelling.search.cv_splitter``).
        task: ``classification`` or ``regression``.
        n_jobs: folds encoded and scored in parallel (joblib; a Dask backend if active).
        groups: one label per row (the user ids) for ``probe``'s samples, or None.
        lazy: encode the first fold only until ``complete`` or ``score`` needs the rest (so
            a budget can be judged before paying for all the encodings).
    """

    def __init__(self, prep, X: pd.DataFrame, y: pd.Series, cv, task: str, n_jobs=None,
                 lazy: bool = False, groups=None):
        self.task = task
        self._groups = None if groups is None else np.asarray(groups)
        self.n_jobs = n_jobs
        self._scorer = get_scorer(SCORING[task])
        self._data = (prep, X, y)
        self._splits = list(cv.split(X, y))
        self.folds, self.seconds, self._times = [], 0.0, []
        if lazy:  # the first fold only: enough to time the encoders and probe candidates
            self._add([_encode(prep, X, y, self._splits[0])], 0.0)
        else:
            self.complete()

    def _add(self, done: list, seconds: float) -> None:
        self.folds += [fold for fold, _ in done]
        self._times += [t for _, t in done]
        self.seconds += seconds or sum(t for _, t in done)

    @property
    def encode_seconds(self) -> float:
        """Seconds to encode one fold's rows inside a worker (its start-up left out)."""
        return float(np.mean(self._times))

    @property
    def pending_seconds(self) -> float:
        """Projected seconds to encode the folds not encoded yet (``n_jobs`` at a time)."""
        left = len(self._splits) - len(self.folds)
        return math.ceil(left / max(1, self.n_jobs or 1)) * self.encode_seconds

    def complete(self) -> None:
        """Encode the folds not encoded yet, in parallel."""
        todo = self._splits[len(self.folds):]
        if todo:
            start = time.perf_counter()
            done = Parallel(n_jobs=self.n_jobs)(delayed(_encode)(*self._data, s) for s in todo)
            self._add(done, time.perf_counter() - start)

    @property
    def n_splits(self) -> int:
        """Number of folds."""
        return len(self._splits)

    def score(self, estimator) -> float:
        """Mean CV score in the metric's own units (ROC AUC, or RMSE >= 0)."""
        self.complete()
        scores = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_score)(clone(estimator), fold, self._scorer) for fold in self.folds
        )
        mean = float(np.mean(scores))
        return -mean if self.task == "regression" else mean

    def probe(self, estimator, rows: int, seed: int = 0, give_up: float = float("inf")) -> Probe:
        """Time fit + predict on ``rows // 4`` and ``rows`` encoded training rows of fold 1.

        The rows are whole groups (``groups``: the users) drawn at random, so that costs
        that grow with a user's ratings (SVD++) scale as on the whole data; without groups,
        random rows. Each fit predicts a validation share as large as one fold's. When the
        smaller fit, scaled linearly to one fold's rows, already takes ``give_up`` seconds,
        the larger one is not run (the probe then reads as linear growth: a lower bound).
        """
        Mf, yf, Mv, _ = self.folds[0]
        n2 = max(8, min(int(rows), len(yf)))
        n1 = max(min(50, n2), n2 // 4)
        rng = np.random.default_rng(seed)
        if self._groups is None:
            order = rng.permutation(len(yf))
        else:  # whole groups (users) in random order: their rows as dense as in the data
            _, inverse = np.unique(self._groups[self._splits[0][0]], return_inverse=True)
            order = np.argsort(rng.permutation(inverse.max() + 1)[inverse], kind="stable")
        share = len(Mv) / len(yf)
        seconds = []
        for n in (n1, n2):
            idx = order[:n]
            start = time.perf_counter()
            fitted = clone(estimator).fit(_rows(Mf, idx), yf[idx])
            _predict(fitted, _rows(Mv, np.arange(min(len(Mv), max(1, int(n * share))))),
                     self.task)
            seconds.append(time.perf_counter() - start)
            if seconds[0] * len(yf) / n1 > give_up:
                return Probe((n1, n1), (seconds[0], seconds[0]))
        return Probe((n1, n2), (seconds[0], seconds[1]))


def _rows(M, idx):
    return M.iloc[idx] if isinstance(M, pd.DataFrame) else M[idx]


def _predict(estimator, M, task: str):
    return estimator.predict_proba(M) if task == "classification" else estimator.predict(M)
