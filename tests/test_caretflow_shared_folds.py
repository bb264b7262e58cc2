"""The feature steps fitted once per fold, shared by the search and the calibration.

The search scores candidates on ``shared_folds`` instead of refitting the whole pipeline
for every candidate and fold; its scores must be exactly scikit-learn's ``GridSearchCV``
on the whole pipeline, and the calibration after it must not fit the chosen candidate
on those folds again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import open_dict
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV

from caretflow.config import compose
from caretflow.data import tables as D
from caretflow.modelling import encoded_folds
from caretflow.modelling.build import make_pipeline, out_of_fold
from caretflow.modelling.encoded_folds import shared_folds
from caretflow.modelling.fold_fits import split_pipeline
from caretflow.modelling.search import SCORING, cv_splitter, run_search


class CountingRidge(Ridge):
    """A ridge regression that counts its fits (class-wide: clones count too)."""

    fits = 0

    def fit(self, X, y, sample_weight=None):
        """Count, then fit."""
        type(self).fits += 1
        return super().fit(X, y, sample_weight)


@pytest.fixture(scope="module")
def ratings():
    """A small slice of the generated ratings, with id encoders in the pipeline."""
    cfg = compose(["dataset=ratings", "profile=quick", "version=v2_random_forest"])
    with open_dict(cfg):
        cfg.model.search = {"method": "grid", "space": {"alpha": [0.1, 10.0, 1000.0]}}
    _, train, _ = D.training_split(D.load_raw(cfg.dataset), cfg)
    train = train.sample(n=1500, random_state=0)
    return cfg, train[D.feature_columns(cfg.dataset)], train[cfg.dataset.target]


def test_search_scores_equal_gridsearchcv_on_the_whole_pipeline(ratings):
    cfg, X, y = ratings
    pipeline = make_pipeline(cfg, Ridge(), "regression")
    _, best, table = run_search(cfg, pipeline, X, y, "regression", "test")
    cv = cv_splitter("regression", cfg.profile.search_folds, cfg.seed)
    reference = GridSearchCV(make_pipeline(cfg, Ridge(), "regression"),
                             {"model__alpha": [0.1, 10.0, 1000.0]},
                             scoring=SCORING["regression"], cv=cv).fit(X, y)
    assert table["mean_test_score"].tolist() == pytest.approx(
        reference.cv_results_["mean_test_score"].tolist(), rel=1e-9)
    assert best == {"alpha": reference.best_params_["model__alpha"]}


def test_calibration_reuses_the_folds_and_the_fits_of_the_search(ratings):
    cfg, X, y = ratings
    encoded_folds._SHARED.clear()
    cv = cv_splitter("regression", 3, cfg.seed)
    pipeline = make_pipeline(cfg, CountingRidge(alpha=10.0), "regression")
    prep, tail = split_pipeline(pipeline)
    folds = shared_folds(prep, X, y, cv, "regression")
    CountingRidge.fits = 0
    first = folds.predictions(tail)
    assert CountingRidge.fits == 3
    again = out_of_fold(pipeline, X, y, "regression", cv, "test")
    assert CountingRidge.fits == 3  # the same folds, the same candidate: no new fit
    assert np.array_equal(first, again)
    out_of_fold(make_pipeline(cfg, CountingRidge(alpha=1.0), "regression"), X, y,
                "regression", cv, "test")
    assert CountingRidge.fits == 6  # another candidate is fitted
    other = cv_splitter("regression", 2, cfg.seed)
    assert shared_folds(prep, X, y, other, "regression") is not folds  # other splits


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_xgboost_tree_counts_share_one_fit_and_predict_as_separate_fits(ratings, task):
    from imblearn.over_sampling import SMOTE
    from imblearn.pipeline import Pipeline
    from xgboost import XGBClassifier, XGBRegressor

    from caretflow.modelling.encoded_folds import EncodedFolds
    from caretflow.modelling.fold_fits import stage_groups

    _, X, y = ratings
    rng = np.random.default_rng(0)
    M = rng.normal(size=(len(y), 6))
    if task == "classification":
        target = pd.Series((M[:, 0] + rng.normal(size=len(y)) > 1).astype(int))
        model = Pipeline([("resample", SMOTE(random_state=0)),
                          ("model", XGBClassifier(max_depth=2, n_jobs=1, random_state=0))])
        params = "model__n_estimators"
    else:
        target = pd.Series(M[:, 0] * 2 + rng.normal(size=len(y)))
        model, params = XGBRegressor(max_depth=2, n_jobs=1, random_state=0), "n_estimators"
    frame = pd.DataFrame(M)
    cv = cv_splitter(task, 2, 0)
    grid = [clone(model).set_params(**{params: n}) for n in (10, 30, 20)]
    other = clone(model).set_params(**{params: 10, ("model__" if "__" in params else "")
                                       + "learning_rate": 0.05})
    assert stage_groups([*grid, other]) == [[1, 2, 0], [3]]  # most trees first
    shared = EncodedFolds(None, frame, target, cv, task).fold_predictions(grid)
    for estimator, folds in zip(grid, shared, strict=True):
        alone = EncodedFolds(None, frame, target, cv, task).fold_predictions([estimator])[0]
        for a, b in zip(folds, alone, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
