"""/predict: one record, batches, explicit versions, inline feedback, what gets stored."""

from __future__ import annotations

import json
import sqlite3

from tests.app_helpers import RECORD, headers

FIELDS = {"prediction", "prediction_id", "model_version", "version_name", "arm", "probability",
          "threshold"}


def _db(app) -> sqlite3.Connection:
    url = app.extensions["caretflow"].settings.PREDICTION_DB_URL
    return sqlite3.connect(url.removeprefix("sqlite:///"))


def test_single_record_answers_the_contract(client, tiny_registry):
    r = client.post("/predict", json=RECORD, headers=headers())
    assert r.status_code == 200, r.json
    body = r.json
    assert set(body) == FIELDS
    assert body["prediction"] in (0, 1) and 0.0 <= body["probability"] <= 1.0
    assert body["prediction"] == int(body["probability"] >= body["threshold"])
    from mlflow.tracking import MlflowClient

    champion = MlflowClient(tiny_registry["uri"]).get_model_version_by_alias("churn", "champion")
    assert body["arm"] == "default" and body["model_version"] == str(champion.version)


def test_batch_is_one_answer_per_record_in_order(client):
    records = [RECORD, {**RECORD, "Age": 70, "IsActiveMember": 0}, {**RECORD, "Balance": 5e4}]
    r = client.post("/predict", json={"records": records}, headers=headers())
    assert r.status_code == 200
    preds = r.json["predictions"]
    assert len(preds) == 3 and len({p["prediction_id"] for p in preds}) == 3
    single = client.post("/predict", json=records[1], headers=headers()).json
    assert preds[1]["probability"] == single["probability"]


def test_explicit_version_by_alias_and_number(client):
    by_alias = client.post("/predict", json={**RECORD, "version_name": "v4_xgboost"},
                           headers=headers()).json
    by_number = client.post("/predict", json={**RECORD, "version_name": by_alias["model_version"]},
                            headers=headers()).json
    assert by_alias["version_name"] == "v4_xgboost" == by_number["version_name"]
    assert by_alias["probability"] == by_number["probability"]


def test_fast_path_matches_the_logged_pipeline(shared_app):
    import numpy as np

    from caretflow.fastpath import probe_columns
    from caretflow.registry import load_model

    st = shared_app.extensions["caretflow"]
    for served in (st.store.default, st.store.challenger):
        plain = load_model(f"models:/churn/{served.version}")
        for n in (5, 1100):  # 1100 rows: split across PREDICT_THREADS when it is a forest
            X = probe_columns(plain.input_schema, n=n, seed=11)
            got, want = served.model.predict_details(X), plain.predict_details(X)
            for key in want:
                np.testing.assert_allclose(got[key], want[key], rtol=1e-9)


def test_float32_thresholds_split_every_float32_input_as_the_float64_ones():
    import numpy as np

    from caretflow.fastpath import exact_float32

    rng = np.random.default_rng(3)
    x = rng.normal(0, 1e3, 20_000).astype(np.float32)
    # thresholds between neighbouring float32 values, on them, and infinite (a leaf)
    t = np.concatenate([(x[:5000].astype(np.float64) + np.nextafter(x[:5000], np.inf)) / 2,
                        x[5000:10_000].astype(np.float64), [np.inf]])
    t32 = exact_float32(t)
    assert t32.dtype == np.float32
    for xs in (x, np.nextafter(x, np.inf), np.nextafter(x, -np.inf)):
        want = xs[:, None].astype(np.float64) > t[None, ::97]
        assert np.array_equal(xs[:, None] > t32[None, ::97], want)


def test_prediction_and_inline_feedback_are_stored_without_personal_data(client, shared_app):
    record = {**RECORD, "CustomerId": 15634602, "Surname": "Hargrave", "RowNumber": 1,
              "true_value": 1}
    pid = client.post("/predict", json=record, headers=headers()).json["prediction_id"]
    with _db(shared_app) as conn:
        row = conn.execute("select routing, inputs from prediction_groups where request_id=?",
                           (pid[:28],)).fetchone()
        truth = conn.execute("select true_value, source, prediction, probability from labels "
                             "where prediction_id=?", (pid,)).fetchone()
        dump = "\n".join(str(r) for r in conn.execute("select * from prediction_groups"))
    assert row[0] == '["15634602"]' and "Hargrave" not in dump and "RowNumber" not in row[1]
    assert json.loads(row[1])["Age"] == [RECORD["Age"]]
    assert truth[:2] == (1.0, "inline") and truth[2] in (0.0, 1.0) and 0 <= truth[3] <= 1
