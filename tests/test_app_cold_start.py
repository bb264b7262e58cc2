"""``cold_start`` in /predict answers of recommender models (one test with /recommend's)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from caretflow.inference.ranking import build_catalogue, cold_start
from caretflow.modelling.factorization import LatentFactorRegressor
from tests.app_helpers import RECORD, headers

NEW_USER, NEW_ITEM = 987654, 999999


@pytest.fixture
def rc(ratings_app):
    return ratings_app.test_client()


def _known_record(app) -> dict:
    """A record of a user and an item that both were in the training split."""
    cat = app.extensions["caretflow"].store.default.model.catalogue
    user = {c: v[:1].tolist()[0] for c, v in cat["users"].items()}
    item = {c: v[:1].tolist()[0] for c, v in cat["items"].items()}
    return {**user, **item}


def test_predict_flags_unknown_users_and_items_and_answers_them(rc, ratings_app):
    known = _known_record(ratings_app)
    one = rc.post("/predict", json=known, headers=headers())
    assert one.status_code == 200, one.json
    assert one.json["cold_start"] is False
    records = [known, {**known, "user_id": NEW_USER}, {**known, "item_id": NEW_ITEM},
               {**known, "user_id": NEW_USER + 1}]
    r = rc.post("/predict", json={"records": records}, headers=headers())
    assert r.status_code == 200, r.json
    answers = r.json["predictions"]
    assert [a["cold_start"] for a in answers] == [False, True, True, True]
    assert answers[0]["prediction"] == one.json["prediction"]
    for a in answers:  # the prior / side-feature answer, with its interval
        assert 1 <= a["interval"]["lower"] <= a["prediction"] <= a["interval"]["upper"] <= 5
    # an unseen user id is answered from the side features alone: which unseen id it is
    # does not matter
    assert answers[1]["prediction"] == pytest.approx(answers[3]["prediction"])
    # the MLflow scoring protocol answers as `mlflow models serve` would: no flag
    inv = rc.post("/invocations", json={"dataframe_records": records}, headers=headers())
    assert inv.status_code == 200, inv.json
    assert set(inv.json) == {"predictions"}
    assert inv.json["predictions"] == pytest.approx([a["prediction"] for a in answers])


def test_recommend_and_predict_agree_on_who_is_cold(rc, ratings_app):
    known = _known_record(ratings_app)
    for user, cold in ((known["user_id"], False), (NEW_USER, True)):
        rec = rc.post("/recommend", json={"user_id": user, "k": 3}, headers=headers())
        pred = rc.post("/predict", json={**known, "user_id": user}, headers=headers())
        assert rec.status_code == pred.status_code == 200
        assert rec.json["cold_start"] is pred.json["cold_start"] is cold


def test_openapi_lists_cold_start_and_churn_answers_without_it(rc, client):
    doc = rc.get("/openapi.json").json
    field = doc["components"]["schemas"]["PredictionOut"]["properties"]["cold_start"]
    assert {"type": "boolean"} in field["anyOf"] and "recommender" in field["description"]
    churn = client.post("/predict", json=RECORD, headers=headers())
    assert churn.status_code == 200, churn.json
    assert "cold_start" not in churn.json and "probability" in churn.json


def test_catalogue_test_matches_the_factorization_models_own():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"user_id": rng.integers(1, 30, 400), "item_id": rng.integers(1, 20, 400),
                          "rating": rng.integers(1, 6, 400).astype(float)})
    ds = OmegaConf.create({"target": "rating", "schema": {"user_id": {}, "item_id": {}},
                           "recommender": {"user": "user_id", "item": "item_id"}})
    est = LatentFactorRegressor(user="user_id", item="item_id", algorithm="baseline", n_epochs=2)
    est.fit(train[["user_id", "item_id"]], train["rating"])
    asked = pd.DataFrame({"user_id": [1, 5, 99, 7, 99], "item_id": [2, 77, 3, 4, 77]})
    ours = cold_start(build_catalogue(train, ds), asked)
    assert ours.tolist() == est.cold_start(asked).tolist()
    assert ours[1] and ours[2] and ours[4]


def test_unseen_ids_are_the_ones_not_in_the_catalogue_in_any_order():
    from caretflow.inference.ranking import _unseen

    rng = np.random.default_rng(1)
    known = np.unique(rng.integers(0, 500, 200))
    asked = np.concatenate([rng.integers(-5, 510, 300), known[[0, -1]], [known[-1] + 1]])
    want = ~np.isin(asked, known)
    assert want.any() and not want.all()
    for catalogue in (known, known[::-1].copy(), rng.permutation(known)):  # sorted or not
        assert _unseen(catalogue, asked).tolist() == want.tolist()
    assert _unseen(np.array([], dtype=int), asked[:3]).tolist() == [True] * 3
    assert _unseen(known.astype(str), asked.astype(str)).tolist() == want.tolist()
