"""Factorization families: latent factors as Surprise fits them, and myFM, predicting in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io
from sklearn.base import clone

from caretflow.data.ratings_generator import generate_ratings
from caretflow.modelling.bayesian_fm import BayesianFMRegressor
from caretflow.modelling.factorization import LatentFactorRegressor, for_dataset
from caretflow.registry import trusted_types

SIDE = {"numeric": ["user_age", "item_price"], "categorical": ["user_gender", "item_category"]}


@pytest.fixture(scope="module")
def ratings():
    df = generate_ratings(n_users=60, n_items=40, density=0.6, seed=3)
    return df.drop(columns=["expected_rating"])


def _rmse(pred, y) -> float:
    return float(np.sqrt(np.mean((np.clip(pred, 1, 5) - np.asarray(y)) ** 2)))


@pytest.mark.parametrize("algorithm", ["baseline", "svd", "svdpp"])
def test_latent_factors_match_surprise_and_answer_cold_start_with_biases(ratings, algorithm):
    import surprise

    train, test = ratings.iloc[:1200], ratings.iloc[1200:]
    est = LatentFactorRegressor(user="user_id", item="item_id", algorithm=algorithm,
                                n_epochs=10, random_state=1)
    est.fit(train, train["rating"])
    # The library itself, same params: SVD / SVD++ are fitted by caretflow's own compiled
    # loop, which must reproduce Surprise's fit (same order of updates, same initial draws).
    common = dict(n_factors=est.n_factors, n_epochs=10, lr_all=est.lr_all,
                  reg_all=est.reg_all, random_state=1)
    algo = {"baseline": clone(est)._algo, "svd": lambda: surprise.SVD(**common),
            "svdpp": lambda: surprise.SVDpp(**common)}[algorithm]()
    frame = train[["user_id", "item_id", "rating"]].astype({"user_id": str, "item_id": str})
    algo.fit(surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(1, 5)))
             .build_full_trainset())
    theirs = [algo.predict(str(u), str(i)).est for u, i in zip(test.user_id, test.item_id,
                                                                strict=True)]
    np.testing.assert_allclose(np.clip(est.predict(test), 1, 5), theirs, atol=1e-9)
    assert _rmse(est.predict(test), test.rating) < _rmse(np.full(len(test), est.mu_), test.rating)
    # Unknown user: mu + item bias; unknown item: mu + user bias; both: mu. Flagged cold.
    known_u, known_i = train.user_id.iloc[0], train.item_id.iloc[0]
    X = {"user_id": np.array([10**6, known_u, 10**6]), "item_id": np.array([known_i, 10**6, 10**6])}
    u = np.searchsorted(est.users_, str(known_u))
    i = np.searchsorted(est.items_, str(known_i))
    expected = [est.mu_ + est.item_bias_[i], est.mu_ + est.user_bias_[u], est.mu_]
    np.testing.assert_allclose(est.predict(X), expected)
    assert est.cold_start(X).all() and not est.cold_start(train.head(3)).any()


def test_fm_numpy_prediction_is_myfm_posterior_mean_and_side_features_serve_cold_start(
    ratings, monkeypatch
):
    import myfm

    seen = {}
    fit = myfm.MyFMRegressor.fit

    def spy(self, X, y, X_rel=(), **kw):
        out = fit(self, X, y, X_rel=X_rel, **kw)
        seen["pred"] = self.predict(X, X_rel)
        return out

    monkeypatch.setattr(myfm.MyFMRegressor, "fit", spy)
    est = BayesianFMRegressor(user="user_id", item="item_id", n_iter=60, n_kept_samples=10, **SIDE)
    est.fit(ratings, ratings["rating"])
    np.testing.assert_allclose(est.predict(ratings), seen["pred"], atol=1e-4)
    assert _rmse(est.predict(ratings), ratings.rating) < float(np.std(ratings.rating))
    # Unknown users: the answer follows their side features, never an error.
    new = {"user_id": np.array([10**6, 10**6 + 1]), "item_id": ratings.item_id.iloc[:2].to_numpy(),
           "user_age": np.array([20, 65]), "item_price": ratings.item_price.iloc[:2].to_numpy(),
           "user_gender": np.array(["M", "F"]), "item_category": np.array(["A", "not-seen"])}
    pred = est.predict(new)
    assert np.isfinite(pred).all() and est.cold_start(new).all()
    assert est.predict({**new, "user_age": np.array([65, 20])})[0] != pytest.approx(pred[0])


def test_fitted_families_round_trip_through_skops_with_the_trusted_list(ratings):
    fitted = [
        LatentFactorRegressor(user="user_id", item="item_id", n_epochs=5).fit(ratings,
                                                                            ratings.rating),
        BayesianFMRegressor(user="user_id", item="item_id", n_iter=20, n_kept_samples=5,
                            **SIDE).fit(ratings, ratings.rating),
    ]
    for est in fitted:
        data = skops.io.dumps(est)
        types = trusted_types(data)  # raises on anything outside caretflow's allow-list
        assert not [t for t in types if t.startswith(("surprise", "myfm"))]
        back = skops.io.loads(data, trusted=types)
        np.testing.assert_allclose(back.predict(ratings), est.predict(ratings), atol=1e-5)


def test_dataset_fills_columns_and_other_data_is_refused():
    from caretflow.config import compose

    est = for_dataset(BayesianFMRegressor(), compose(["dataset=movielens"]).dataset)
    assert (est.user, est.item) == ("user_id", "item_id")
    assert "user_occupation" in est.categorical and "item_year" in est.numeric
    with pytest.raises(ValueError, match="user x item"):
        for_dataset(LatentFactorRegressor(), compose([]).dataset)  # churn


def test_factor_feature_is_out_of_fold_while_fitting_and_on_for_movielens(ratings):
    from caretflow.config import compose
    from caretflow.features.latent import FactorPredictionEncoder
    from caretflow.modelling.build import id_encoders

    y = ratings["rating"].to_numpy()
    enc = FactorPredictionEncoder(n_epochs=10, n_splits=5, random_state=0)
    oof = enc.fit_transform(ratings, y)["lf_pred"]
    full = enc.transform(ratings)["lf_pred"]
    # In-sample predictions fit their own targets; the out-of-fold ones cannot.
    assert _rmse(full, y) < _rmse(oof, y)
    steps, names = id_encoders(compose(["dataset=movielens"]))
    assert isinstance(dict(steps)["latent"], FactorPredictionEncoder) and "lf_pred" in names
    assert "latent" not in dict(id_encoders(compose(["dataset=ratings"]))[0])
