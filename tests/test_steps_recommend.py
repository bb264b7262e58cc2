import numpy as np
import pandas as pd
import pytest

from caretflow.config import compose
from caretflow.data.movielens import GENRE_COLUMNS, load_movielens
from caretflow.inference.ranking import ranking_metrics


def test_ranking_metrics_perfect_and_reversed():
    users = [1, 1, 1, 2, 2]
    truth = [5, 4, 1, 2, 5]
    perfect = ranking_metrics(users, [5, 4, 1, 2, 5], truth, k=2)
    assert perfect == {"precision_at_2": 0.75, "ndcg_at_2": 1.0}
    worst = ranking_metrics(users, [1, 2, 5, 5, 2], truth, k=2)
    assert worst["ndcg_at_2"] < perfect["ndcg_at_2"]


def write_ml100k(folder, n_users=30, n_items=25, seed=0):
    """A tiny data set in the ml-100k file formats."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    occupations = ["student", "engineer", "other", "writer"]
    users = [
        f"{u}|{rng.integers(15, 70)}|{rng.choice(['M', 'F'])}|{rng.choice(occupations)}|"
        f"{rng.integers(10000, 99999)}"
        for u in range(1, n_users + 1)
    ]
    (folder / "u.user").write_text("\n".join(users) + "\n")
    items = []
    for i in range(1, n_items + 1):
        flags = "|".join(str(int(f)) for f in rng.random(19) < 0.2)
        items.append(f"{i}|Film {i} (199{i % 10})|01-Jan-199{i % 10}||http://x/{i}|{flags}")
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    bias_u, bias_i = rng.normal(0, 0.7, n_users + 1), rng.normal(0, 0.7, n_items + 1)
    rows = []
    for u in range(1, n_users + 1):
        for i in rng.choice(np.arange(1, n_items + 1), size=n_items * 3 // 5, replace=False):
            r = int(np.clip(np.round(3.5 + bias_u[u] + bias_i[i] + rng.normal(0, 0.6)), 1, 5))
            rows.append(f"{u}\t{i}\t{r}\t{880000000 + len(rows)}")
    (folder / "u.data").write_text("\n".join(rows) + "\n")
    return folder


def test_movielens_adapter_reads_the_standard_files(tmp_path):
    folder = write_ml100k(tmp_path / "ml")
    df = load_movielens(folder)
    assert {
        "user_id",
        "item_id",
        "rating",
        "user_age",
        "user_gender",
        "user_occupation",
        "item_year",
        *GENRE_COLUMNS,
    } <= set(df.columns)
    assert "zip" not in df.columns and "title" not in df.columns
    ds = compose(["dataset=movielens", f"dataset.source.path={folder}"]).dataset
    from caretflow.data.tables import validate

    validate(df, ds, "regression")


def test_movielens_missing_files_are_named(tmp_path):
    from caretflow.data.tables import DataValidationError

    with pytest.raises(DataValidationError, match="u.data"):
        load_movielens(tmp_path)


def test_recommend_from_a_trained_ratings_model(tracking_store):
    from mlflow.tracking import MlflowClient

    from caretflow.inference.ranking import recommend
    from caretflow.registry import load_model
    from tests.conftest import build_registry

    build_registry("ratings", ["v2_random_forest"])
    model = load_model("models:/ratings@v2_random_forest")
    known = int(model.catalogue["users"]["user_id"][0])
    out = recommend(model, known, k=10, exclude_rated=True)
    assert not out["cold_start"] and len(out["items"]) <= 10
    rated = set(model.catalogue["rated_items"][model.catalogue["rated_users"] == known].tolist())
    assert not {it["item_id"] for it in out["items"]} & rated
    scores = [it["predicted_rating"] for it in out["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(
        it["interval"]["lower"] <= it["predicted_rating"] <= it["interval"]["upper"]
        for it in out["items"]
    )
    cold = recommend(model, 987654, k=5)
    assert cold["cold_start"] and len(cold["items"]) == 5
    mv = MlflowClient().get_model_version_by_alias("ratings", "v2_random_forest")
    metrics = MlflowClient().get_run(mv.run_id).data.metrics
    assert 0 < metrics["test_ndcg_at_10"] <= 1 and 0 < metrics["test_precision_at_10"] <= 1


def test_movielens_pipeline_registers_under_its_name(tmp_path, tracking_store):
    from mlflow.tracking import MlflowClient

    from tests.conftest import build_registry

    folder = write_ml100k(tmp_path / "ml", n_users=40, n_items=30)
    build_registry("movielens", ["v2_random_forest"], extra=[f"dataset.path={folder}"])
    mv = MlflowClient().get_model_version_by_alias("movielens", "v2_random_forest")
    metrics = MlflowClient().get_run(mv.run_id).data.metrics
    assert "test_rmse" in metrics and "test_interval_coverage" in metrics
    assert pd.notna(metrics["test_rmse"])
