"""/versions, /load_version, alias moves picked up in the background, broken versions, /health."""

from __future__ import annotations

import time

from caretflow.launch import wait_until as wait_for
from tests.app_helpers import ADMIN, RECORD, headers, running_app


def test_versions_lists_every_version_with_metrics_and_ab(fresh_app):
    body = fresh_app.test_client().get("/versions", headers=headers()).json
    assert body["default_version"] and body["ab_testing"]["weights"] == {
        "champion": 0.9, "challenger": 0.1}
    names = {v["version_name"] for v in body["versions"]}
    assert {"v2_random_forest", "v4_xgboost"} <= names
    default = [v for v in body["versions"] if v["default"]]
    assert len(default) == 1 and "champion" in default[0]["aliases"]
    assert all("test_roc_auc" in v["test_metrics"] for v in body["versions"])


def test_load_version_moves_the_alias_and_tags_who(fresh_app):
    st, c = fresh_app.extensions["caretflow"], fresh_app.test_client()
    other = next(v for v in ("v2_random_forest", "v4_xgboost")
                 if v != st.store.default.version_name)
    r = c.post(f"/load_version/{other}", headers=headers(ADMIN))
    assert r.status_code == 200 and r.json["version_name"] == other
    assert c.post("/predict", json=RECORD, headers=headers()).json["version_name"] == other
    mv = st.store.client.get_model_version_by_alias("churn", "champion")
    assert mv.tags["version_name"] == other and mv.tags["caretflow.serving_set_by"].startswith(
        "key-")
    assert ADMIN not in str(mv.tags)


def test_alias_moved_elsewhere_is_followed_by_the_background_refresh(fresh_app):
    st = fresh_app.extensions["caretflow"]
    target = st.store.challenger.version
    st.store.client.set_registered_model_alias("churn", "champion", target)  # e.g. in the UI
    assert wait_for(lambda: st.store.default.version == target, timeout=5)


def test_broken_version_keeps_the_old_one_serving(fresh_app):
    st, c = fresh_app.extensions["caretflow"], fresh_app.test_client()
    before = st.store.default.version
    run_id = st.store.default.run_id
    broken = st.store.client.create_model_version("churn", "/nonexistent/model", run_id)
    st.store.client.set_registered_model_alias("churn", "broken", broken.version)
    r = c.post("/load_version/broken", headers=headers(ADMIN))
    assert r.status_code == 409 and "/nonexistent" not in r.get_data(as_text=True)
    st.store.client.set_registered_model_alias("churn", "champion", broken.version)
    moved = wait_for(lambda: c.get("/health").json["alias_target"] == str(broken.version), 5)
    assert moved and str(broken.version) in c.get("/health").json["load_errors"]
    assert c.post("/predict", json=RECORD, headers=headers()).json["model_version"] == before
    body = c.get("/health").json
    assert body["ready"] and body["alias_target"] == str(broken.version)
    assert body["default_version"] == before
    listed = {v["version"]: v for v in c.get("/versions", headers=headers()).json["versions"]}
    assert listed[str(broken.version)]["load_error"]


def test_starts_without_a_registry_and_reports_not_ready(tiny_registry, tmp_path):
    with running_app(tiny_registry, tmp_path, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/e.db",
                     STARTUP_WAIT_SECONDS=5) as app:
        c = app.test_client()
        r = c.get("/health")
        assert r.status_code == 503 and r.json["ready"] is False
        assert c.post("/predict", json=RECORD, headers=headers()).status_code == 503


def test_metrics_docs_and_model_health(fresh_app):
    c = fresh_app.test_client()
    records = [{**RECORD, "Age": 20 + i % 50, "true_value": i % 2} for i in range(25)]
    c.post("/predict", json={"records": records}, headers=headers())
    text = c.get("/metrics").get_data(as_text=True)
    assert "caretflow_predictions_total" in text and 'route="/predict"' in text
    assert "caretflow_feedback_total" in text
    doc = c.get("/openapi.json").json
    assert {"/predict", "/feedback", "/versions", "/model_health"} <= set(doc["paths"])
    assert "CreditScore" in str(doc["components"]["schemas"]["PredictRecord"])
    assert c.get("/docs").status_code == 200
    health = c.get("/model_health", headers=headers()).json
    version = next(v for v in health["versions"] if v["feedback"] == 25)
    assert version["status"] in ("healthy", "degraded")
    assert "live_f1" in version["live_metrics"] and "roc_auc" in version["thresholds"]
    assert set(version["drift"]["features"]) >= {"Age", "Geography"}
    assert version["drift"]["rows"] == version["predictions"] == 25
    time.sleep(0.5)
    short = c.get("/model_health?window_hours=0.0001", headers=headers()).json
    assert all(v["feedback"] == 0 for v in short["versions"])
    assert c.get("/model_health?window_hours=x", headers=headers()).status_code == 422
