"""Feedback by prediction id, and live metrics logged back to the originating run."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from caretflow.launch import wait_until as wait_for
from tests.app_helpers import RECORD, headers


def test_feedback_reaches_live_metrics_of_the_source_run(fresh_app):
    st = fresh_app.extensions["caretflow"]
    c = fresh_app.test_client()
    records = [{**RECORD, "Age": 20 + i, "CustomerId": i} for i in range(30)]
    preds = c.post("/predict", json={"records": records}, headers=headers()).json["predictions"]
    truths = [{"prediction_id": p["prediction_id"], "true_value": i % 2}
              for i, p in enumerate(preds)]
    r = c.post("/feedback", json=truths[:29], headers=headers())
    assert r.status_code == 201 and r.json["recorded"] == 29
    assert c.post("/feedback", json=truths[29], headers=headers()).status_code == 201
    assert c.post("/feedback", json=truths[0], headers=headers()).status_code == 409

    client = st.store.client
    run_id = client.get_model_version("churn", preds[0]["model_version"]).run_id

    def history():
        h = client.get_metric_history(run_id, "live_accuracy")
        return h if h and h[-1].step == 30 else None

    logged = wait_for(history, timeout=15)
    assert logged, "live_accuracy never reached the originating run"
    y = [t["true_value"] for t in truths]
    accuracy = sum(int(p["prediction"] == t) for p, t in zip(preds, y, strict=True)) / 30
    assert abs(logged[-1].value - accuracy) < 1e-9
    metrics = client.get_run(run_id).data.metrics
    assert {"live_precision", "live_recall", "live_f1"} <= set(metrics)
    assert st.live.send() == 0  # outbox drained


def test_live_metrics_wait_in_the_outbox_while_mlflow_is_unreachable(fresh_app, monkeypatch):
    from sqlalchemy import func, select

    from app.live_metrics import LiveMetrics
    from app.prediction_log.db import metric_outbox

    st = fresh_app.extensions["caretflow"]
    for task in st.tasks:
        task.stop()
    c = fresh_app.test_client()
    pred = c.post("/predict", json={**RECORD, "true_value": 1}, headers=headers()).json
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    down = MlflowClient(tracking_uri="http://127.0.0.1:9")  # nothing listens there
    offline = LiveMetrics(st.engine, down, "churn", st.store.contract_of)
    offline._run_ids[pred["model_version"]] = st.store.default.run_id
    offline.tick()
    with st.engine.connect() as conn:
        queued = conn.execute(select(func.count()).select_from(metric_outbox)).scalar()
    assert queued > 0
    assert st.live.send() == queued  # MLflow back: everything queued is logged
    history = st.store.client.get_metric_history(st.store.default.run_id, "live_accuracy")
    assert [m.step for m in history] == [1]
