"""Cross-validation folds whose features are fitted inside each fold, computed once.

The id encoders learn from targets, so they must be fitted on each fold's training rows
only, or the validation rows see their own targets through the encodings (the leaderboard
then favours the models that exploit that). Fitting them inside every fold for every
candidate repeats the same work: the encoders and the feature step are deterministic, so
each fold's encoded training and validation matrices are computed once here and every
candidate (and blend) is scored on them. Scores equal ``cross_val_score`` of the whole
pipeline on the same folds.

Each candidate's out-of-fold predictions are kept (``predictions``), so a search, the
auto-select and the calibration that follows them fit a candidate on the same folds once:
the calibration of a version whose calibration folds are its search folds costs nothing.
"""

from __future__ import annotations

import math
import time

import joblib
import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone

from caretflow.modelling.budget import Probe
from caretflow.modelling.fold_fits import _predict, fit_predict, fold_score, model_key, stage_groups


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
        self._data = (prep, X, y)
        self._splits = list(cv.split(X, y))
        self.folds, self.seconds, self._times = [], 0.0, []
        self._oof: dict[str, list[np.ndarray]] = {}
        if lazy:  # the first fold only: enough to time the encoders and probe candidates
            self._add([_encode(prep, X, y, self._splits[0])], 0.0)
        else:
            self.complete()

    def set_groups(self, groups) -> None:
        """One label per row (the user ids) for ``probe``'s samples."""
        self._groups = np.asarray(groups)

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

    def same_splits(self, cv) -> bool:
        """Whether ``cv`` splits the training rows exactly as these folds do."""
        _, X, y = self._data
        other = list(cv.split(X, y))
        return len(other) == len(self._splits) and all(
            np.array_equal(a, c) and np.array_equal(b, d)
            for (a, b), (c, d) in zip(other, self._splits, strict=True)
        )

    def fold_predictions(self, estimators: list) -> list[list[np.ndarray]]:
        """Validation predictions of each estimator on each fold (each fitted once per fold).

        The (estimator, fold) fits not made before run as one joblib batch; an estimator
        already fitted on these folds (same class and params) is not fitted again, and
        XGBoost candidates differing only in their tree count share one fit per fold
        (``caretflow.modelling.fold_fits.stage_groups``).
        """
        self.complete()
        keys = [model_key(e) for e in estimators]
        todo = list({k: e for k, e in zip(keys, estimators, strict=True)
                     if k not in self._oof}.items())
        groups = stage_groups([e for _, e in todo])
        preds = Parallel(n_jobs=self.n_jobs)(
            delayed(fit_predict)([todo[j][1] for j in group], fold, self.task)
            for group in groups
            for fold in self.folds
        )
        n = len(self.folds)
        for g, group in enumerate(groups):
            for m, j in enumerate(group):
                self._oof[todo[j][0]] = [fold[m] for fold in preds[g * n:(g + 1) * n]]
        return [self._oof[k] for k in keys]

    def fold_scores(self, estimators: list) -> list[list[float]]:
        """Per-fold scores of each estimator, in scikit-learn's sign (higher is better)."""
        _, _, y = self._data
        return [
            [fold_score(y.iloc[val].to_numpy(), p, self.task)
             for (_, val), p in zip(self._splits, preds, strict=True)]
            for preds in self.fold_predictions(estimators)
        ]

    def predictions(self, estimator) -> np.ndarray:
        """Out-of-fold predictions of ``estimator`` over all training rows."""
        out = np.empty(len(self._data[2]))
        for (_, val), pred in zip(self._splits, self.fold_predictions([estimator])[0],
                                  strict=True):
            out[val] = pred
        return out

    def score(self, estimator) -> float:
        """Mean CV score in the metric's own units (ROC AUC, or RMSE >= 0)."""
        mean = float(np.mean(self.fold_scores([estimator])[0]))
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


_SHARED: dict = {}


def shared_folds(prep, X: pd.DataFrame, y: pd.Series, cv, task: str, n_jobs=None,
                 lazy: bool = False, groups=None) -> EncodedFolds:
    """The ``EncodedFolds`` of these feature steps, rows and splits, made once per process.

    A search, the auto-select and the calibration after them ask for the same folds; the
    last two made (the auto-select's encoded and raw-column folds) are kept, keyed by the
    steps' params and the rows' content, and returned while the splits are the same, with
    ``n_jobs`` (and ``groups``) updated.
    """
    key = (joblib.hash(prep), joblib.hash((X, y)), task)
    folds = _SHARED.get(key)
    if folds is None or not folds.same_splits(cv):
        _SHARED.pop(key, None)
        while len(_SHARED) >= 2:
            del _SHARED[next(iter(_SHARED))]
        folds = _SHARED[key] = EncodedFolds(prep, X, y, cv, task, n_jobs, lazy=lazy,
                                            groups=groups)
        return folds
    folds.n_jobs = n_jobs
    if groups is not None:
        folds.set_groups(groups)
    return folds


def _rows(M, idx):
    return M.iloc[idx] if isinstance(M, pd.DataFrame) else M[idx]

