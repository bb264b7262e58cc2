import numpy as np
import pandas as pd

from caretflow.features.encoders import BaselineBiases, TargetStatsEncoder
from caretflow.features.tabular import TabularFeatures


def _frame(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "Balance": rng.uniform(0, 1e5, n).round() * (rng.random(n) > 0.3),
            "EstimatedSalary": rng.uniform(1e3, 1e5, n),
            "NumOfProducts": rng.integers(1, 5, n),
            "IsActiveMember": rng.integers(0, 2, n),
            "Age": rng.integers(18, 90, n),
            "Geography": rng.choice(["France", "Spain", "Germany"], n),
        }
    )


def _features():
    return TabularFeatures(
        numeric=["Age", "Balance"],
        categories={"Geography": ["France", "Germany", "Spain"]},
        engineered=["zero_balance", "products_x_active"],
    )


def test_frame_and_dict_give_the_same_matrix():
    df = _frame()
    tf = _features().fit(df)
    as_dict = {c: df[c].to_numpy()[:1] for c in df}
    np.testing.assert_allclose(tf.transform(df)[:1], tf.transform(as_dict))


def test_scaled_columns_and_one_hot():
    df = _frame()
    out = _features().fit(df).transform(df)
    assert out.shape == (50, 4 + 3)
    np.testing.assert_allclose(out[:, :4].mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(out[:, 4:].sum(axis=1), 1)
    names = list(_features().fit(df).get_feature_names_out())
    assert names[-3:] == ["Geography=France", "Geography=Germany", "Geography=Spain"]


def test_unknown_category_is_all_zero():
    df = _frame()
    tf = _features().fit(df)
    row = {c: df[c].to_numpy()[:1] for c in df}
    row["Geography"] = np.array(["Italy"])
    assert tf.transform(row)[0, 4:].sum() == 0


def test_target_encoding_is_out_of_fold_on_training_rows():
    # Every row has its own id: an in-fold encoding would leak the row's own target.
    n = 200
    X = pd.DataFrame({"user_id": np.arange(n)})
    y = np.random.default_rng(0).normal(size=n)
    enc = TargetStatsEncoder(groups=[["user_id"]], smoothing=1.0, n_splits=5)
    oof = enc.fit_transform(X, y)["te_user_id"]
    assert abs(np.corrcoef(oof, y)[0, 1]) < 0.2
    full = enc.transform(X)["te_user_id"]
    assert np.corrcoef(full, y)[0, 1] > 0.9


def test_unseen_ids_fall_back_to_prior():
    X = pd.DataFrame({"user_id": [1, 1, 2, 2], "cat": ["A", "B", "A", "B"]})
    enc = TargetStatsEncoder(groups=[["user_id"], ["user_id", "cat"]], smoothing=0.0).fit(
        X, [1, 2, 3, 4]
    )
    out = enc.transform({"user_id": np.array([1, 99]), "cat": np.array(["A", "A"])})
    assert out["te_user_id"][0] == 1.5
    assert out["te_user_id"][1] == 2.5 and out["n_user_id"][1] == 0
    assert out["te_user_id__cat"][0] == 1.0


def test_baseline_biases_recover_user_and_item_effects():
    rng = np.random.default_rng(1)
    users, items = rng.integers(0, 30, 3000), rng.integers(0, 20, 3000)
    bu, bi = rng.normal(0, 1, 30), rng.normal(0, 1, 20)
    y = 3 + bu[users] + bi[items] + rng.normal(0, 0.3, 3000)
    X = {"user_id": users, "item_id": items}
    enc = BaselineBiases(reg=1.0).fit(X, y)
    pred = enc.transform(X)["bl_pred"]
    assert np.sqrt(np.mean((pred - (3 + bu[users] + bi[items])) ** 2)) < 0.1
    oof = enc.fit_transform(X, y)["bl_pred"]
    assert np.sqrt(np.mean((oof - y) ** 2)) > np.sqrt(np.mean((pred - y) ** 2))
    unseen = enc.transform({"user_id": np.array([999]), "item_id": np.array([999])})
    assert unseen["bl_user"][0] == 0 and unseen["bl_item"][0] == 0


def test_baseline_extra_group_learns_residual_taste():
    rng = np.random.default_rng(2)
    n = 4000
    users, cats = rng.integers(0, 20, n), rng.choice(["A", "B"], n)
    taste = {(u, c): rng.normal(0, 0.8) for u in range(20) for c in "AB"}
    y = np.array([3 + taste[(u, c)] for u, c in zip(users, cats, strict=True)])
    X = {"user_id": users, "item_id": rng.integers(0, 10, n), "cat": cats}
    enc = BaselineBiases(reg=1.0, extra=[["user_id", "cat"]]).fit(X, y)
    out = enc.transform(X)
    resid = y - out["bl_pred"]
    assert np.corrcoef(out["bl_user_id__cat"], resid)[0, 1] > 0.95
    assert BaselineBiases.output_names([["user_id", "cat"]])[-1] == "bl_user_id__cat"


def test_taste_has_its_own_shrinkage():
    rng = np.random.default_rng(3)
    n = 600
    X = {"user_id": rng.integers(0, 30, n), "item_id": rng.integers(0, 10, n),
         "cat": rng.choice(["A", "B"], n)}
    y = 3 + rng.normal(0, 1, n)
    extra = [["user_id", "cat"]]
    same = BaselineBiases(reg=2.0, extra=extra).fit(X, y).transform(X)
    explicit = BaselineBiases(reg=2.0, extra=extra, extra_reg=2.0).fit(X, y).transform(X)
    strong = BaselineBiases(reg=2.0, extra=extra, extra_reg=50.0).fit(X, y).transform(X)
    np.testing.assert_array_equal(same["bl_user_id__cat"], explicit["bl_user_id__cat"])
    np.testing.assert_array_equal(same["bl_user"], strong["bl_user"])
    assert np.std(strong["bl_user_id__cat"]) < 0.5 * np.std(same["bl_user_id__cat"])


def test_encoder_settings_come_from_the_data_set_config():
    from caretflow.config import compose
    from caretflow.modelling.build import id_encoders

    cfg = compose(["dataset=ratings"])
    steps, names = id_encoders(cfg)
    enc = dict(steps)
    baseline, encoding = cfg.dataset.features.baseline, cfg.dataset.features.encoding
    assert enc["ids"].smoothing == encoding.smoothing
    assert enc["ids"].n_splits == enc["baseline"].n_splits == encoding.folds
    assert (enc["baseline"].reg, enc["baseline"].extra_reg) == (baseline.reg, baseline.extra_reg)
    assert names[-1] == "bl_user_id__item_category"
    movielens = dict(id_encoders(compose(["dataset=movielens"]))[0])
    assert movielens["baseline"].n_splits == 5 and movielens["baseline"].extra_reg is None


def _keys(X, cols) -> np.ndarray:
    """The keys as models fitted before spelled them: numpy string arrays joined by ``|``."""
    keys = np.asarray(X[cols[0]]).astype(str)
    for c in cols[1:]:
        keys = np.char.add(np.char.add(keys, "|"), np.asarray(X[c]).astype(str))
    return keys


def test_encoding_reads_the_fitted_dicts_with_the_keys_fit_spells():
    # Keys are built as Python strings; they must be the keys earlier models spelled.
    from caretflow.features.encoders import _key_list

    rng = np.random.default_rng(4)
    X = {"user_id": rng.integers(0, 40, 500), "item_id": rng.integers(0, 15, 500),
         "cat": rng.choice(["A", "B", "C"], 500)}
    y = rng.normal(3, 1, 500)
    groups, extra = [["user_id"], ["user_id", "cat"]], [["user_id", "cat"]]
    stats = TargetStatsEncoder(groups=groups, smoothing=2.0).fit(X, y)
    biases = BaselineBiases(reg=1.0, extra=extra).fit(X, y)
    for cat in (np.array(["A", "C", "A", "Z"]), np.array(["A", "C", "A", "Z"], dtype=object)):
        new = {"user_id": np.array([3, 39, 1000, 7]), "item_id": np.array([0, 99, 1, 14]),
               "cat": cat, "price": np.array([1.5, 2.0, 1e16, -0.1])}
        for cols in (["user_id"], ["user_id", "cat"], ["cat", "price"]):
            assert _key_list(new, cols) == _keys(new, cols).tolist()
        te, bl = stats.transform(new), biases.transform(new)
        for cols, table in zip(groups, stats.state_["stats"], strict=True):
            sn = np.array([table.get(k, (0.0, 0.0)) for k in _keys(new, cols)])
            np.testing.assert_array_equal(te[f"n_{'__'.join(cols)}"], np.log1p(sn[:, 1]))
        want = [biases.state_["extra"][0].get(k, 0.0) for k in _keys(new, extra[0])]
        np.testing.assert_array_equal(bl["bl_user_id__cat"], want)
        assert bl["bl_user"][2] == 0.0 and te["n_user_id"][2] == 0.0  # unseen ids
