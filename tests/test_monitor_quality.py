"""What a person looks at: records rejected at validation, recorded by field and reason and
counted by the monitor step; the CBPE estimate gauge set by the observer; the monitor's
training reference taken from the preprocess profile."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from app.observer import Observer
from app.prediction_log.db import rejections
from caretflow.monitoring import analysis, cbpe, quality, report
from steps.monitor import analyse, drift_reference, metrics_of
from tests.app_helpers import RECORD, headers

SECRET = "Private-Surname-" * 20  # too long for the schema: rejected, and never stored


def _post(client, path: str, body) -> object:
    return client.post(path, json=body, headers=headers())


def _rows(app, request_id: str) -> dict[tuple[str, str], dict]:
    engine = app.extensions["caretflow"].engine
    with engine.connect() as conn:
        found = conn.execute(select(rejections).where(rejections.c.request_id == request_id))
        return {(r["field"], r["reason"]): dict(r) for r in found.mappings()}


@pytest.fixture(scope="module")
def traffic(shared_app):
    """Two bad batches (alone in their window), then unlabelled and labelled predictions."""
    client = shared_app.test_client()
    start = time.time()
    bad = [{**RECORD, "Age": 200}, {**RECORD, "Age": 150, "Geography": "Mars"}, RECORD]
    for _ in range(2):
        assert _post(client, "/predict", {"records": bad}).status_code == 422
    until = time.time() + 0.001
    time.sleep(0.01)
    unlabelled = [{**RECORD, "Age": 18 + i, "Balance": 1000.0 * i} for i in range(40)]
    answered = _post(client, "/predict", {"records": unlabelled}).get_json()["predictions"]
    labelled = [{**RECORD, "Age": 60 + i % 20, "IsActiveMember": 0, "true_value": i % 2}
                for i in range(30)]
    assert _post(client, "/predict", {"records": labelled}).status_code == 200
    return {"since": start, "until": until,
            "probabilities": [a["probability"] for a in answered]}


def test_rejections_are_recorded_by_field_and_reason_without_values(shared_app, client):
    bad = [RECORD, {**RECORD, "Age": 200, "Geography": "Mars"}, {**RECORD, "Age": 150}]
    r = _post(client, "/predict", {"records": bad})
    assert r.status_code == 422
    rows = _rows(shared_app, r.headers["X-Request-Id"])
    assert {k: v["rows"] for k, v in rows.items()} == {("Age", "less_than_equal"): 2,
                                                         ("Geography", "literal_error"): 1}
    version = shared_app.extensions["caretflow"].store.default.version
    for row in rows.values():
        assert row["request_rows"] == 3 and row["route"] == "/predict"
        assert row["model_name"] == "churn" and row["model_version"] == version
        assert row["created_at"] > time.time() - 60

    one = _post(client, "/predict", {**RECORD, "Surname": SECRET, "Tenure": "two",
                                     "CustomerId": 2.5})
    assert one.status_code == 422
    rows = _rows(shared_app, one.headers["X-Request-Id"])  # one reason per field and record
    assert {k: v["rows"] for k, v in rows.items()} == {
        ("Surname", "string_too_long"): 1, ("Tenure", "value_error"): 1,
        ("CustomerId", "int_from_float"): 1}
    assert all(SECRET not in str(v) and v != "two" for row in rows.values()
               for v in row.values())

    inv = _post(client, "/invocations", {"dataframe_records": [{**RECORD, "Age": -3}]})
    assert inv.status_code == 422
    rows = _rows(shared_app, inv.headers["X-Request-Id"])
    assert list(rows) == [("Age", "greater_than_equal")]
    assert rows[("Age", "greater_than_equal")]["route"] == "/invocations"

    scrape = client.get("/metrics").get_data(as_text=True)
    counted = {(s.labels["field"], s.labels["reason"]): s.value
               for f in text_string_to_metric_families(scrape) for s in f.samples
               if s.name == "caretflow_rejected_rows_total"}
    assert counted[("Age", "less_than_equal")] >= 2 and counted[("Surname", "string_too_long")]


def test_monitor_counts_rejections_by_field_and_reason(shared_app, traffic, tmp_path):
    window = (traffic["until"] - traffic["since"]) / 3600  # the bad batches only
    rep = analyse("churn", window, shared_app.extensions["caretflow"].settings.PREDICTION_DB_URL,
                  traffic["until"], tmp_path)
    q = rep["quality"]
    assert rep["versions"] == {} and q["requests"] == 2 and q["records"] == 6
    assert q["by_field"] == {"Age": 4, "Geography": 2}
    assert [(d["field"], d["reason"], d["rows"], d["requests"]) for d in q["by_reason"]] == [
        ("Age", "less_than_equal", 4, 2), ("Geography", "literal_error", 2, 2)]
    metrics = metrics_of(rep)
    assert metrics["quality.rejected_rows.Age.less_than_equal"] == 4
    assert metrics["quality.rejected_rows.Age"] == 4
    assert metrics["quality.rejected_requests"] == 2 and metrics["quality.rejected_records"] == 6
    assert (tmp_path / "quality.png").stat().st_size > 5000
    html = report.render(rep)
    section = html.split("<section id='data-quality'>")[1].split("</section>")[0]
    assert "less_than_equal" in section and "<img" in section
    # With a contract (a version served in the window) every field is listed, clean ones too.
    listed = quality.summary(pd.DataFrame(), ["Age", "Tenure"])
    assert listed["by_field"] == {"Age": 0, "Tenure": 0} and listed["records"] == 0
    assert quality.metrics(listed)["quality.rejected_rows.Tenure"] == 0


def test_monitor_reference_is_the_profile_one_the_model_carries(shared_app):
    store = shared_app.extensions["caretflow"].store
    for version in (store.default.version, store.challenger.version):
        mv = MlflowClient().get_model_version("churn", version)
        model = store.get(version).model
        reference, source = drift_reference(mv, model)
        assert source.startswith("the data profile of preprocess run")
        assert reference == model.reference and set(reference) == set(
            model.contract["features"])


def test_observer_sets_the_estimated_metric_gauge_from_unlabelled_predictions(
        shared_app, client, traffic):
    st = shared_app.extensions["caretflow"]
    Observer(st).tick()
    scrape = client.get("/metrics").get_data(as_text=True)
    version = st.store.default.version
    gauge = {s.labels["metric"]: s.value for f in text_string_to_metric_families(scrape)
             for s in f.samples if s.name == "caretflow_estimated_metric"
             and s.labels["model"] == "churn" and s.labels["version"] == version}
    threshold = analysis.threshold(st.store.default.contract)
    expected = cbpe.estimate_classification(traffic["probabilities"], threshold)
    assert set(gauge) == {"roc_auc", "accuracy", "f1", "precision", "recall"}
    for metric, value in gauge.items():
        assert value == pytest.approx(expected[metric]), metric


def test_recommend_rejections_are_recorded_by_field_and_reason(ratings_app):
    client = ratings_app.test_client()
    bad = _post(client, "/recommend", {"user_id": 0, "k": 1001})
    assert bad.status_code == 422
    rows = _rows(ratings_app, bad.headers["X-Request-Id"])
    assert {k: v["rows"] for k, v in rows.items()} == {("user_id", "greater_than_equal"): 1,
                                                         ("k", "less_than_equal"): 1}
    version = ratings_app.extensions["caretflow"].store.default.version
    for row in rows.values():
        assert (row["route"], row["model_name"], row["model_version"], row["request_rows"]) == (
            "/recommend", "ratings", version, 1)
    unknown = _post(client, "/recommend", {"user_id": 1, "items": [999998, 999999]})
    assert unknown.status_code == 422  # valid body, but no item is in the catalogue
    assert {k: v["rows"] for k, v in _rows(ratings_app, unknown.headers["X-Request-Id"]).items()
            } == {("items", "unknown_item"): 1}
