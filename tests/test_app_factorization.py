"""A factorization family end to end: trained, evaluated, registered, served by /predict and
/recommend (cold start included) and batch-scored like any version."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from caretflow.config import compose
from caretflow.inference.batch import Scoring, score_frame
from caretflow.launch import copy_sqlite_store
from tests.app_helpers import headers, running_app
from tests.conftest import TINY

SVD = ["dataset=ratings", *TINY, "model=svd", "model.search=null", "model.params.n_epochs=10"]


@pytest.mark.slow
def test_svdpp_version_is_evaluated_and_serves_predict_and_recommend(ratings_uri, tmp_path,
                                                                     monkeypatch):
    from steps.evaluate import evaluate
    from steps.train import train

    # A private copy of the session's ratings store: train reuses its preprocess run.
    store = copy_sqlite_store(ratings_uri, tmp_path / "store")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    trained = train(compose(SVD))
    run = MlflowClient().get_run(trained["run_id"])
    evaluate(compose([*SVD, f"preprocess_run_id={run.data.tags['preprocess_run_id']}"]))
    metrics = MlflowClient().get_run(trained["run_id"]).data.metrics
    assert metrics["test_rmse"] < 1.0 and 0.8 < metrics["test_interval_coverage"] <= 1.0
    with running_app({}, tmp_path, MLFLOW_TRACKING_URI=store, MODEL_NAME="ratings",
                     SERVING_ALIAS="svd") as app:
        c, model = app.test_client(), app.extensions["caretflow"].store.default.model
        cat = model.catalogue
        user = {k: v[:1].tolist()[0] for k, v in cat["users"].items()}
        item = {k: v[:1].tolist()[0] for k, v in cat["items"].items()}
        new_user = {**user, "user_id": 10**8}
        r = c.post("/predict", json={"records": [{**user, **item}, {**new_user, **item}]},
                   headers=headers())
        assert r.status_code == 200, r.json
        known, cold = r.json["predictions"]
        assert known["version_name"] == cold["version_name"] == "svd"
        est = model.pipeline.steps[-1][1]
        bias_only = est.mu_ + est.item_bias_[np.searchsorted(est.items_, str(item["item_id"]))]
        assert cold["prediction"] == pytest.approx(np.clip(bias_only, 1, 5))
        assert cold["interval"]["lower"] < cold["prediction"] < cold["interval"]["upper"]
        rec = c.post("/recommend", json={"user_id": user["user_id"], "k": 5}, headers=headers())
        assert rec.status_code == 200 and rec.json["cold_start"] is False
        ratings = [it["predicted_rating"] for it in rec.json["items"]]
        assert len(ratings) == 5 and ratings == sorted(ratings, reverse=True)
        rec = c.post("/recommend", json={"user_id": 10**8, "k": 5}, headers=headers())
        assert rec.status_code == 200 and rec.json["cold_start"] is True
        # Batch scoring answers what /predict answered.
        contract = model.contract
        scoring = Scoring(contract["features"], contract["schema"], "regression", [], "1", "svd")
        scored, errors = score_frame(model, pd.DataFrame([{**user, **item}, {**new_user, **item}]),
                                     scoring)
        assert errors.empty
        assert scored["prediction"].tolist() == pytest.approx([known["prediction"],
                                                               cold["prediction"]])
