"""The retrain step's snapshot goes through the real preprocess step: lineage and time split."""

from __future__ import annotations

import time
from types import SimpleNamespace

import mlflow
import orjson
import pandas as pd
import pytest

from app.prediction_log import db, queries
from app.prediction_log.db import new_request_id, prediction_ids
from caretflow.config import ROOT, compose
from steps import preprocess as preprocess_step
from steps import retrain

FEATURES = ["CreditScore", "Geography", "Gender", "Age", "Tenure", "Balance", "NumOfProducts",
            "HasCrCard", "IsActiveMember", "EstimatedSalary"]


def _log(url: str, rows: pd.DataFrame) -> None:
    """Score and label ``rows`` (10 per request, one request a minute) as the server does."""
    engine = db.make_engine(url)
    start = time.time() - 4 * 3600  # the newest request 50 min ago
    for i in range(0, len(rows), 10):
        part, rid = rows.iloc[i:i + 10], new_request_id()
        db.write(engine, [{
            "request_id": rid, "arm": "default", "created_at": start + 60 * i, "size": len(part),
            "model_name": "churn", "model_version": "1", "version_name": "v2_random_forest",
            "positions": None, "routing": None,
            "inputs": orjson.dumps({c: part[c].tolist() for c in FEATURES}).decode(),
            "outputs": orjson.dumps({"prediction": [0] * len(part)}).decode()}], [])
        ids = prediction_ids(rid, range(len(part)))
        found, _ = queries.find_predictions(engine, ids)
        assert db.add_labels(engine, [
            {"prediction_id": p, **found[p][0], "true_value": float(y), "source": "api",
             "created_at": start + 60 * i + 1}
            for p, y in zip(ids, part["Exited"], strict=True)])
    engine.dispose()


@pytest.mark.slow
def test_snapshot_preprocess_names_the_prediction_log_and_holds_out_the_newest(
        tracking_store, tmp_path, monkeypatch):
    monkeypatch.setattr(retrain, "SNAPSHOT_DIR", tmp_path / "snapshots")
    monkeypatch.setattr(preprocess_step, "_log_profile", lambda *a: None)  # not tested here
    whole = retrain._base
    monkeypatch.setattr(retrain, "_base", lambda cfg: whole(cfg).head(600))  # small and quick
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    _log(url, pd.read_csv(ROOT / "data" / "Churn_Modelling.csv").sample(200, random_state=3))
    cfg = compose(["dataset=churn", "profile=quick"])
    champion = SimpleNamespace(version="1", creation_timestamp=time.time() * 1000)
    contract = {"task": "classification", "target": "Exited", "features": FEATURES,
                "schema": dict(cfg.dataset.schema)}
    snap, manifest = retrain.build_snapshot(cfg, "churn", champion, contract, 720, "append", url)
    assert snap.counts["production"] == 200 and snap.counts["base"] <= 600
    path = snap.path.with_suffix(".json")
    path.write_text(orjson.dumps(manifest).decode())
    overrides = retrain._pipeline_overrides(cfg, snap, path, "1")
    run_id = preprocess_step.preprocess(compose(["dataset=churn", "profile=quick", *overrides]))
    run = mlflow.get_run(run_id)
    inputs = {d.tags[0].value: d.dataset for d in run.inputs.dataset_inputs}
    lineage = inputs["retrain"]
    assert lineage.source_type == "prediction_log" and lineage.digest == snap.digest
    assert orjson.loads(lineage.source)["url"] == url
    assert run.data.tags["snapshot_digest"] == snap.digest
    assert run.data.params["snapshot.rows_production"] == "200"
    test, train = (preprocess_step.load_split(run_id, s) for s in ("test", "train"))
    assert len(test) == 40 and set(test["origin"]) == {"production"}  # retrain.test_share 0.2
    assert test["event_time"].min() > train["event_time"].max()
