"""MovieLens-shaped generated data: ml-100k files the adapter reads, with the real table's shape."""

from __future__ import annotations

import numpy as np
import pytest

from caretflow.config import compose
from caretflow.data.movielens import load_movielens
from caretflow.data.movielens_generator import generate_movielens, read_truth, write_movielens
from caretflow.data.tables import validate


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = write_movielens(tmp_path_factory.mktemp("ml-synth"))
    return folder, load_movielens(folder)


def test_files_pass_the_movielens_adapter_and_its_schema(written):
    folder, df = written
    ds = compose(["dataset=movielens", f"dataset.path={folder}"]).dataset
    df = validate(df, ds, ds.task)
    assert df["user_id"].nunique() == 943 and df["item_id"].nunique() > 1000
    density = len(df) / (943 * 1682)
    assert 0.05 < density < 0.07
    per_user = df.groupby("user_id").size()
    assert per_user.min() >= 20 and per_user.max() >= 300 and per_user.median() < per_user.mean()
    per_item = df["item_id"].value_counts()
    # Long tail: the most popular tenth of the items holds a large share, many items few ratings.
    assert per_item.head(168).sum() / len(df) > 0.3 and (per_item < 10).mean() > 0.2
    assert set(df["rating"]) == {1, 2, 3, 4, 5} and 3.3 < df["rating"].mean() < 3.8
    assert df.filter(like="genre_").sum(axis=1).min() >= 1
    assert set(df["user_gender"]) == {"M", "F"} and df["user_occupation"].nunique() == 21


def test_truth_lines_up_with_the_ratings_and_sets_the_noise_floor(written):
    folder, df = written
    truth = read_truth(folder)
    np.testing.assert_array_equal(truth[["user_id", "item_id"]], df[["user_id", "item_id"]])
    floor = float(np.sqrt(np.mean((df["rating"] - truth["expected_rating"]) ** 2)))
    assert 0.7 < floor < 0.85  # noise_sd 0.8 before rounding and clipping
    ratings, _, _ = generate_movielens(n_users=50, n_items=80, mean_ratings=30)
    again, _, _ = generate_movielens(n_users=50, n_items=80, mean_ratings=30)
    assert ratings.equals(again)  # deterministic for a seed
