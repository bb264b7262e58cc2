import numpy as np
import pandas as pd
import pytest

from caretflow.config import compose
from caretflow.data import tables as D
from caretflow.data.ratings_generator import generate_ratings, noise_floor_rmse


@pytest.fixture
def churn_cfg():
    return compose(["dataset=churn"]).dataset


@pytest.fixture
def raw():
    cfg = compose(["dataset=churn"]).dataset
    return D.load_raw(cfg).head(200).copy()


def test_real_churn_table_validates(churn_cfg):
    df = D.validate(D.load_raw(churn_cfg), churn_cfg, "classification")
    assert len(df) == 10000
    assert df["Exited"].mean() == pytest.approx(0.2037)


def _error(df, cfg, task="classification"):
    with pytest.raises(D.DataValidationError) as exc:
        D.validate(df, cfg, task)
    return str(exc.value)


def test_missing_column_is_named(raw, churn_cfg):
    assert "column 'Age': missing" in _error(raw.drop(columns=["Age"]), churn_cfg)


def test_wrong_type_is_named(raw, churn_cfg):
    raw["CreditScore"] = raw["CreditScore"].astype(object)
    raw.loc[raw.index[3], "CreditScore"] = "abc"
    assert "column 'CreditScore': expected int" in _error(raw, churn_cfg)


def test_out_of_range_is_named(raw, churn_cfg):
    raw.loc[raw.index[0], "Age"] = 150
    assert "column 'Age': 1 values above 100" in _error(raw, churn_cfg)


def test_unknown_category_is_named(raw, churn_cfg):
    raw.loc[raw.index[0], "Geography"] = "Atlantis"
    assert "column 'Geography': unknown categories ['Atlantis']" in _error(raw, churn_cfg)


def test_missing_values_are_named(raw, churn_cfg):
    raw.loc[raw.index[:2], "Balance"] = np.nan
    assert "column 'Balance': 2 missing values" in _error(raw, churn_cfg)


def test_one_class_target(raw, churn_cfg):
    raw["Exited"] = 0
    assert "only one class" in _error(raw, churn_cfg)


def test_non_binary_target(raw, churn_cfg):
    raw.loc[raw.index[0], "Exited"] = 3
    assert "expected labels 0/1" in _error(raw, churn_cfg)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    cfg = compose(
        ["dataset=churn", f"dataset.source.path={path}", "dataset.source.sha256_file=null"]
    ).dataset
    with pytest.raises(D.DataValidationError, match="empty"):
        D.load_raw(cfg)


def test_header_only_file_has_no_rows(tmp_path, raw, churn_cfg):
    path = tmp_path / "header.csv"
    raw.head(0).to_csv(path, index=False)
    cfg = compose(
        ["dataset=churn", f"dataset.source.path={path}", "dataset.source.sha256_file=null"]
    ).dataset
    assert "no rows" in _error(D.load_raw(cfg), cfg)


def test_checksum_mismatch(tmp_path, raw):
    path, sha = tmp_path / "c.csv", tmp_path / "c.csv.sha256"
    raw.to_csv(path, index=False)
    sha.write_text("0" * 64 + "  c.csv\n")
    cfg = compose(
        ["dataset=churn", f"dataset.source.path={path}", f"dataset.source.sha256_file={sha}"]
    ).dataset
    with pytest.raises(D.DataValidationError, match="does not match"):
        D.load_raw(cfg)


def test_split_is_stratified_and_untouched(churn_cfg):
    df = D.validate(D.load_raw(churn_cfg), churn_cfg, "classification")
    train, test = D.split(df, churn_cfg, 42)
    assert len(test) == 1500
    assert test["Exited"].mean() == pytest.approx(df["Exited"].mean(), abs=0.005)
    assert not set(train.index) & set(test.index)


def test_generator_is_deterministic_and_bounded():
    a, b = generate_ratings(seed=3), generate_ratings(seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert a["rating"].between(1, 5).all()
    assert a["user_id"].between(1, 100).all() and a["item_id"].between(1, 50).all()
    assert a["user_age"].between(18, 70).all()
    assert set(a["item_category"]) <= {"A", "B", "C"} and set(a["user_gender"]) <= {"M", "F"}
    assert a["item_price"].between(10, 100).all()


def test_generator_has_user_effects_beyond_demographics():
    df = generate_ratings()
    # Users of the same age band and gender still differ in mean rating.
    df["band"] = pd.cut(df["user_age"], [17, 34, 51, 70])
    means = df.groupby(["band", "user_gender", "user_id"], observed=True)["rating"].mean()
    spread = means.groupby(level=[0, 1], observed=True).std().mean()
    assert spread > 0.3


def test_noise_floor_is_below_total_spread():
    df = generate_ratings()
    floor = noise_floor_rmse(df)
    assert 0.4 < floor < df["rating"].std()
    ratings_cfg = compose(["dataset=ratings"]).dataset
    D.validate(df, ratings_cfg, "regression")
