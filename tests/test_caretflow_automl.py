"""The auto-select: no leakage into its scores, the time budget, one progress line per candidate."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import cross_val_score

from caretflow.config import compose
from caretflow.data import tables as D
from caretflow.modelling import automl, ensemble
from caretflow.modelling.budget import (
    Budget,
    Cost,
    Probe,
    candidate_cost,
    clock_text,
    fits,
    growth_exponent,
    plan,
    projected_seconds,
)
from caretflow.modelling.build import make_pipeline
from caretflow.modelling.encoded_folds import EncodedFolds
from caretflow.modelling.fold_fits import split_pipeline
from caretflow.modelling.search import cv_splitter


@pytest.fixture(scope="module")
def noise_ratings():
    """Generated ratings whose target is shuffled: no column, id or pair carries signal."""
    cfg = compose(["dataset=ratings", "profile=quick", "version=v1_auto_select"])
    _, train, _ = D.training_split(D.load_raw(cfg.dataset), cfg)
    train = train.sample(n=1800, random_state=0)
    X = train[D.feature_columns(cfg.dataset)]
    y = train[cfg.dataset.target].sample(frac=1, random_state=1).set_axis(X.index)
    return cfg, X, y


def test_scores_with_encoders_inside_the_folds_are_not_optimistic(noise_ratings):
    cfg, X, y = noise_ratings
    cv = cv_splitter("regression", 2, cfg.seed)
    forest = RandomForestRegressor(n_estimators=30, min_samples_leaf=5, random_state=0)
    prep = split_pipeline(make_pipeline(cfg, None, "regression"))[0]
    folds = EncodedFolds(prep, X, y, cv, "regression")
    honest = folds.score(forest)
    # What the auto-select did before: encode the whole split, then cross-validate on it.
    leaky_matrix = make_pipeline(cfg, None, "regression")[:-1].fit_transform(X, y)
    leaky = -cross_val_score(forest, leaky_matrix, y, cv=cv,
                             scoring="neg_root_mean_squared_error").mean()
    spread = float(y.std(ddof=0))  # RMSE of the best constant: nothing can beat it here
    assert leaky < spread < honest, (leaky, spread, honest)
    # The cached folds score exactly what refitting the whole pipeline in every fold does.
    whole = -cross_val_score(make_pipeline(cfg, LinearRegression(), "regression"), X, y, cv=cv,
                             scoring="neg_root_mean_squared_error").mean()
    assert folds.score(LinearRegression()) == pytest.approx(whole, rel=1e-9)


def test_growth_exponent_and_projection():
    quadratic = Probe((1000, 4000), (0.1, 1.6))
    assert growth_exponent(quadratic) == pytest.approx(2.0)
    assert projected_seconds(quadratic, 8000, 2.0) == pytest.approx(6.4)
    assert growth_exponent(Probe((1000, 4000), (0.1, 0.2))) == 1.0  # start-up costs: linear
    assert growth_exponent(Probe((1000, 4000), (0.01, 60.0))) == 3.0
    assert growth_exponent(Probe((1000, 1000), (0.1, 0.1))) == 1.0


def test_candidate_cost_projects_cv_and_finalising():
    linear = Probe((1000, 4000), (0.5, 2.0))  # 0.5 ms per row
    cost = candidate_cost(linear, rows=40_000, folds=5, cv_folds=5, workers=2, encode_seconds=3)
    fold = 2.0 * 32_000 / 4000  # 16 s per fold, 5 folds two at a time: 3 rounds
    assert cost.cv == pytest.approx(3 * fold)
    assert cost.final == pytest.approx(5 * (16 + 3) + 20 + 3)  # calibration folds + final fit
    assert cost.exponent == 1.0 and cost.total == pytest.approx(cost.cv + cost.final)
    reused = candidate_cost(linear, rows=40_000, folds=5, cv_folds=5, workers=2,
                            encode_seconds=3, calibration_reused=True)
    assert reused.cv == cost.cv and reused.final == pytest.approx(20 + 3)  # final fit only


def test_plan_drops_what_grows_too_fast_for_the_data():
    probes = {"lr": Probe((1000, 4000), (0.01, 0.04)),
              "svm": Probe((1000, 4000), (0.2, 3.2)),  # cheap on the probe, quadratic
              "rf": Probe((1000, 4000), (0.5, 2.0))}
    costs = {n: candidate_cost(p, 80_000, 5, 5, 2) for n, p in probes.items()}
    kept, dropped = plan(costs, budget_seconds=300, max_share=0.5)
    assert kept == ["lr"] and set(dropped) == {"svm", "rf"}
    assert "rows^2.0" in dropped["svm"] and "50% of the 300s left in the budget" in dropped["svm"]
    kept, dropped = plan(costs, budget_seconds=math.inf, max_share=0.5)
    assert kept == ["lr", "svm", "rf"] and dropped == {}


def test_fits_leaves_room_to_finalise_the_best_so_far():
    cost = Cost(cv=30, final=20)
    assert fits(cost, left_seconds=50)
    assert not fits(cost, left_seconds=49)
    assert not fits(cost, left_seconds=60, reserve=40)  # the leader's final fit comes first


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_one_progress_line_per_candidate_and_a_skip_line(caplog):
    clock = FakeClock()
    budget = Budget(2, clock=clock)
    cfg = compose(["dataset=ratings", "profile=quick", "version=v1_auto_select"])
    costs = {"lr": Cost(5, 10), "rf": Cost(40, 50), "huge": Cost(200, 300)}

    def scorer(seconds, value):
        def score(estimator):
            clock.now += seconds
            return value
        return score

    scorers = {"lr": scorer(5, 0.9), "rf": scorer(45, 0.85), "huge": scorer(1, 0.5)}
    rows = []
    with caplog.at_level(logging.INFO, logger="caretflow.modelling.automl"):
        scored = automl._score_all(cfg, list(costs), {n: LinearRegression() for n in costs}, costs,
                                   scorers, budget, rows, "rmse")
    lines = [r.getMessage() for r in caplog.records]
    assert scored == {"lr": 0.9, "rf": 0.85}
    assert lines[0].startswith("v1_auto_select: [1/3] lr cv rmse 0.9000 in 5.0s ")
    assert lines[0].endswith("| elapsed 0m05s, 1m55s left of 2m00s")
    assert "rf cv rmse 0.8500 in 45.0s" in lines[1]
    assert lines[1].endswith("| elapsed 0m50s, 1m10s left of 2m00s")
    assert lines[2].startswith("v1_auto_select: [3/3] huge skipped: projected 500s, 1m10s left")
    assert [r["status"] for r in rows] == ["scored", "scored", "skipped"]
    assert rows[1]["cv_seconds"] == 45  # measured seconds replace the projection
    board = automl._leaderboard(rows, "rmse", ascending=True)
    assert list(board["model"]) == ["rf", "lr", "huge"]


def test_settings_budget_and_families():
    cfg = compose(["dataset=ratings", "version=v1_auto_select", "model.budget_minutes=8",
                   "profile.automl.budget_minutes=3"])
    s = automl.settings(cfg)
    assert s["budget_minutes"] == 3 and s["recommender"] == ["svd", "fm"]
    churn = automl.settings(compose(["version=v1_auto_select", "model.budget_minutes=0"]))
    assert churn["budget_minutes"] is None and churn["recommender"] == []
    assert math.isinf(Budget(churn["budget_minutes"]).seconds)
    assert clock_text(math.inf) == "unlimited" and clock_text(-65) == "-1m05s"
    assert ensemble.members("blend_1_4") == (0, 3) and ensemble.members("single") == (0,)


def test_probe_times_two_sizes_of_the_same_folds(noise_ratings):
    _, X, y = noise_ratings
    X = X[["user_age", "item_price"]]
    folds = EncodedFolds(None, X, y, cv_splitter("regression", 3, 0), "regression", lazy=True)
    assert len(folds.folds) == 1 and folds.pending_seconds == 2 * folds.encode_seconds
    probe = folds.probe(LinearRegression(), rows=400)
    assert probe.sizes == (100, 400) and all(t > 0 for t in probe.seconds)
    assert isinstance(folds.folds[0][0], type(X)) and np.isfinite(folds.encode_seconds)
    assert folds.probe(LinearRegression(), rows=400, give_up=0.0).sizes == (100, 100)
    users = noise_ratings[1]["user_id"]
    eager = EncodedFolds(None, X, y, cv_splitter("regression", 3, 0), "regression", groups=users)
    assert eager.probe(LinearRegression(), rows=400).sizes == (100, 400)
    assert folds.score(LinearRegression()) == eager.score(LinearRegression())
    assert len(folds.folds) == 3 and folds.pending_seconds == 0
