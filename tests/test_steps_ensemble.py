"""Automl blends (steps/ensemble.py) and the encoder tuning script (steps/tune_encoders.py)."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io
from lightgbm import LGBMClassifier
from sklearn.ensemble import VotingClassifier, VotingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from caretflow.config import compose
from caretflow.data import tables as D
from caretflow.modelling import ensemble
from caretflow.modelling.build import make_pipeline, set_n_jobs
from caretflow.modelling.tune_encoders import encoder_grid, parse_grid
from caretflow.registry import trusted_types


@pytest.fixture(scope="module")
def churn():
    cfg = compose(["profile=quick", "version=v1_auto_select"])
    raw = D.load_raw(cfg.dataset).head(800)
    _, train, _ = D.training_split(raw, cfg)
    return cfg, train[D.feature_columns(cfg.dataset)], train[cfg.dataset.target]


def _ranked():
    return [LogisticRegression(max_iter=500), DecisionTreeClassifier(max_depth=3, random_state=0)]


def test_candidates_skip_sizes_that_do_not_blend():
    ranked = [*_ranked(), LogisticRegression(C=0.1)]
    options = ensemble.candidates(ranked, [1, 2, 2, 5], 3, "classification")
    assert list(options) == ["single", "blend_1_2", "blend_1_3"]
    assert isinstance(options["single"], LogisticRegression)
    assert options["blend_1_3"].estimators[1][1].C == 0.1
    blend = options["blend_1_2"]
    assert isinstance(blend, VotingClassifier) and blend.voting == "soft"
    assert [n for n, _ in blend.estimators] == ["logisticregression_0", "decisiontreeclassifier_1"]
    assert isinstance(ensemble.soft_vote([LinearRegression()] * 2, "regression"), VotingRegressor)


def test_choose_keeps_the_best_cv_candidate(churn):
    cfg, X, y = churn
    est, name, scores = ensemble.choose(cfg, X, y, _ranked(), {"top": [2]})
    assert set(scores) == {"single", "blend_1_2"}
    assert name == max(scores, key=scores.get) and 0.5 < scores[name] <= 1.0
    assert type(est) is type(ensemble.candidates(_ranked(), [2])[name])
    single, name, scores = ensemble.choose(cfg, X, y, _ranked(), {})
    assert (name, scores) == ("single", {}) and isinstance(single, LogisticRegression)


def test_a_fitted_blend_pipeline_loads_through_trusted_types(churn):
    cfg, X, y = churn
    members = [LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=2), *_ranked()]
    pipeline = make_pipeline(cfg, ensemble.soft_vote(members, "classification"), "classification")
    pipeline.fit(X, y)
    data = skops.io.dumps(pipeline)
    loaded = skops.io.loads(data, trusted=trusted_types(data))
    np.testing.assert_allclose(loaded.predict_proba(X.head(20)), pipeline.predict_proba(X.head(20)))


def test_set_n_jobs_reaches_blend_members():
    blend = ensemble.soft_vote([LGBMClassifier(n_jobs=2), LogisticRegression()], "classification")
    set_n_jobs(blend, 1)
    params = blend.get_params()
    assert params["lgbmclassifier_0__n_jobs"] == 1 and params["n_jobs"] == 1


def test_parse_grid():
    grid = parse_grid(["a.b=1,2", "c=x"])
    assert grid == {"a.b": ["1", "2"], "c": ["x"]}
    with pytest.raises(ValueError, match="key=v1,v2"):
        parse_grid(["a.b"])


def test_encoder_grid_scores_each_point_on_the_training_split():
    table = encoder_grid(
        ["dataset=ratings", "model=logistic_regression", "dataset.features.encoding.folds=3"],
        {"dataset.features.baseline.reg": ["2", "50"]},
        folds=2,
    )
    assert list(table["dataset.features.baseline.reg"]) in (["2", "50"], ["50", "2"])
    assert table["cv_rmse"].is_monotonic_increasing and (table["cv_rmse"] > 0.4).all()
