"""The fast path (caretflow/fastpath/) answers as the logged pipeline: XGBoost and voting blends.

The small models are built with the project's own build code (``fit_version``: pipeline,
out-of-fold Platt calibration and threshold, or K-fold interval) on a small sample, and
compared with the pipeline on held-out rows, one row and 1000-row batches.
"""

from __future__ import annotations

import numpy as np
import pytest
import skops.io
from lightgbm import LGBMClassifier
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from xgboost import XGBClassifier, XGBRegressor

from caretflow.config import compose
from caretflow.data import tables as D
from caretflow.fastpath import accelerate, members, trees
from caretflow.fastpath.members import is_classifier
from caretflow.modelling.build import fit_version
from caretflow.modelling.ensemble import soft_vote
from caretflow.registry import trusted_types

SAMPLE = ["profile=quick", "profile.max_rows=500", "profile.cv_folds=2", "model.search=null"]


def _build(overrides: list[str], estimator=None):
    """(model, held-out rows) of one version fitted on a small sample, then saved and loaded
    as the registry does (skops against caretflow's allow-list)."""
    cfg = compose([*SAMPLE, *overrides])
    raw = D.load_raw(cfg.dataset)
    _, train, _ = D.training_split(raw, cfg)
    cols = D.feature_columns(cfg.dataset)
    model = fit_version(cfg, train[cols], train[cfg.dataset.target], estimator).model
    data = skops.io.dumps(model)
    model = skops.io.loads(data, trusted=trusted_types(data))
    rows = raw.drop(index=train.index, errors="ignore")[cols].sample(1000, random_state=1)
    return model, rows


@pytest.fixture(scope="module")
def models():
    """Churn XGBoost (SMOTE, Platt, threshold), a weighted churn blend with a member that
    has no fast form, and a ratings blend (intervals, clipping)."""
    churn_blend = soft_vote([GradientBoostingClassifier(n_estimators=30, random_state=0),
                             LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1),
                             LogisticRegression(max_iter=500),
                             XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1),
                             DecisionTreeClassifier(max_depth=4, random_state=0)],
                            "classification")
    churn_blend.set_params(weights=[2, 1, 1, 1, 0.5])
    ratings_blend = soft_vote([LinearRegression(),
                               GradientBoostingRegressor(n_estimators=30, random_state=0),
                               RandomForestRegressor(n_estimators=10, max_depth=6,
                                                     random_state=0),
                               XGBRegressor(n_estimators=20, max_depth=3, n_jobs=1)],
                              "regression")
    return {
        "xgboost": _build(["version=v4_xgboost", "+model.params.n_estimators=40"]),
        "churn_blend": _build(["version=v1_auto_select"], churn_blend),
        "ratings_blend": _build(["dataset=ratings", "version=v1_auto_select"], ratings_blend),
    }


FORMS = {
    "xgboost": "XGBoostTrees",
    "churn_blend": "Blend[GradientBoostingTrees, LightGBMTrees, Linear, XGBoostTrees, "
                   "DecisionTreeClassifier.predict_proba]",
    "ratings_blend": "Blend[Linear, GradientBoostingTrees, CompiledForest, XGBoostTrees]",
}


def _same(model, fast, rows, frame: bool = False) -> None:
    """Every output the server answers agrees to 1e-6 (labels exactly), on the column
    arrays the server hands over (and on a DataFrame when ``frame``)."""
    for X in ([rows] if frame else []) + [{c: rows[c].to_numpy() for c in rows}]:
        want, got = model.predict_details(X), fast.predict_details(X)
        assert want.keys() == got.keys()
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-6, err_msg=key)
        if model.task == "classification":
            assert np.array_equal(got["prediction"], want["prediction"])


@pytest.mark.parametrize("name", list(FORMS))
def test_fast_path_answers_as_the_pipeline(models, name):
    model, rows = models[name]
    if model.task == "classification":
        assert model.calibration and model.calibration["method"] == "platt"
    else:
        assert model.interval_halfwidth > 0 and model.target_range == [1, 5]
    fast = accelerate(model, threads=2)
    assert fast is not model and fast.pipeline.kind == FORMS[name]
    for n in (1, 300, 1000):  # one row, a few hundred, and a batch split across threads
        _same(model, fast, rows.iloc[:n], frame=n == 300)


def test_a_member_whose_fast_form_disagrees_answers_itself(models, monkeypatch):
    """A wrong compiled member is caught at load time and replaced by the member itself."""
    model, rows = models["churn_blend"]
    right = members.Linear.__call__
    monkeypatch.setattr(members.Linear, "__call__",
                        lambda self, Z: right(self, Z) * np.array([0.999, 1.001]))
    fast = accelerate(model)
    assert fast is not model
    assert "LogisticRegression.predict_proba" in fast.pipeline.kind
    assert "Linear" not in fast.pipeline.kind.split("[")[1]
    _same(model, fast, rows.iloc[:300])


def test_without_numba_boosted_members_take_their_library_forms(models, monkeypatch):
    model, rows = models["churn_blend"]
    monkeypatch.setattr(trees, "compiled_walk", lambda: None)
    fast = accelerate(model)
    assert fast.pipeline.kind.startswith("Blend[GradientBoosting, LightGBMBooster, Linear, "
                                         "XGBoostInplace,")
    _same(model, fast, rows.iloc[:300])


def test_transforms_skip_the_set_output_wrapper_only_where_it_is_a_no_op(models):
    import sklearn
    from sklearn.preprocessing import StandardScaler

    from caretflow.fastpath.pipeline import plain_transform

    model, rows = models["ratings_blend"]
    steps = [s for _, s in model.pipeline.steps[:-1] if hasattr(s, "transform")]
    X = {c: rows[c].to_numpy() for c in rows.columns}
    for step in steps:  # the real steps: the method itself, same output as through sklearn
        plain = plain_transform(step)
        assert plain.func is type(step).transform.__wrapped__
        got, want = plain(X), step.transform(X)
        assert type(got) is type(want)
        X = want
    scaler = StandardScaler().fit(np.arange(12.0).reshape(6, 2))
    assert plain_transform(scaler).func is StandardScaler.transform.__wrapped__
    with sklearn.config_context(transform_output="pandas"):  # asked for: sklearn's own call
        assert plain_transform(scaler) == scaler.transform
    assert plain_transform(scaler.set_output(transform="pandas")) == scaler.transform
    assert hasattr(plain_transform(scaler)(np.ones((1, 2))), "columns")


def test_a_wrong_final_form_serves_the_pipeline_as_logged(models, monkeypatch):
    model, rows = models["xgboost"]
    for form in (trees.XGBoostTrees, members.XGBoostInplace):
        monkeypatch.setattr(form, "__call__", lambda self, Z: np.full((len(Z), 2), 0.5))
    assert accelerate(model) is model


def _xgboost_data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 5] = rng.integers(0, 4, n)  # ties with split values: the >= side must be exact
    y = X[:, 0] + 0.5 * X[:, 1] * X[:, 5] + rng.normal(scale=0.3, size=n)
    return X, y


@pytest.mark.parametrize("kind", ["binary", "regression", "early_stopped", "forest"])
def test_xgboost_trees_answer_bit_for_bit_as_the_model(kind):
    X, y = _xgboost_data()
    common = {"n_estimators": 60, "max_depth": 4, "n_jobs": 1, "random_state": 0}
    if kind == "binary":
        est = XGBClassifier(**common).fit(X, (y > 0).astype(int))
    elif kind == "early_stopped":
        est = XGBClassifier(**common, early_stopping_rounds=3, learning_rate=0.5).fit(
            X[:400], (y[:400] > 0).astype(int), eval_set=[(X[400:], (y[400:] > 0).astype(int))],
            verbose=False)
        assert est.best_iteration < 59  # fewer rounds answer than were built
    elif kind == "forest":
        est = XGBRegressor(**common, num_parallel_tree=3, subsample=0.8).fit(X, y)
    else:
        est = XGBRegressor(**common).fit(X, y)
    form = trees.XGBoostTrees(est)
    for Z in (X, X[:1], np.round(X, 1)):  # rounded: many values equal a split
        want = est.predict_proba(Z) if is_classifier(est) else est.predict(Z)
        got = form(Z)
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_xgboost_trees_refuse_what_they_do_not_cover():
    X, y = _xgboost_data(200)
    for est in (XGBRegressor(n_estimators=5, objective="count:poisson").fit(X, np.abs(y)),
                XGBRegressor(n_estimators=5, booster="dart").fit(X, y),
                XGBRegressor(n_estimators=5, missing=0.0).fit(X, y),
                XGBClassifier(n_estimators=5).fit(X, np.digitize(y, [-1, 1]))):  # 3 classes
        with pytest.raises(TypeError):
            trees.XGBoostTrees(est)
        assert members.describe(members.checked(est, X)) == "XGBoostInplace"  # the next form


@pytest.mark.slow
def test_fastpath_bench_prints_every_cell(tmp_path):
    """``bench.fastpath_floor`` (a subprocess, on a small sample) times every model, size and
    path, and names the fast form that served."""
    import json
    import subprocess
    import sys

    from caretflow.launch import ROOT, env_with

    out = tmp_path / "floor.json"
    cmd = [sys.executable, "-m", "bench.fastpath_floor", "--overrides",
           "profile.max_rows=300 profile.cv_folds=2",
           "--seconds", "0.01", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env_with(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    cells = {(r["model"], r["rows"], r["path"]) for r in rows}
    assert len(cells) == len(rows) == 3 * 5  # 3 models x (2 paths at 1 row, 3 at 1000)
    assert {r["fast_form"] for r in rows} == {
        "XGBoostTrees", "Blend[GradientBoostingTrees, LightGBMTrees]",
        "Blend[Linear, GradientBoostingTrees]"}
    assert all(r["p50_ms"] > 0 and r["calls"] >= 5 for r in rows)
