"""/recommend over a real tiny ratings registry; live interval coverage in /model_health."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from caretflow.launch import ROOT, env_with
from caretflow.launch import wait_until as wait_for
from tests.app_helpers import headers


@pytest.fixture
def rc(ratings_app):
    return ratings_app.test_client()


def _catalogue(app) -> dict:
    return app.extensions["caretflow"].store.default.model.catalogue


def _post(c, body, key=True):
    return c.post("/recommend", json=body, headers=headers() if key else {})


def test_known_user_gets_sorted_unrated_items_with_intervals(rc, ratings_app):
    cat = _catalogue(ratings_app)
    user = int(cat["users"]["user_id"][0])
    r = _post(rc, {"user_id": user, "k": 10, "exclude_rated": True})
    assert r.status_code == 200, r.json
    body = r.json
    assert body["user_id"] == user and body["cold_start"] is False and body["k"] == 10
    assert body["model_version"] == "1" and body["version_name"] == "v2_random_forest"
    items = body["items"]
    assert 0 < len(items) <= 10
    assert {it["prediction_id"][:28] for it in items} == {r.headers["X-Request-Id"]}
    scores = [it["predicted_rating"] for it in items]
    assert scores == sorted(scores, reverse=True)
    rated = set(cat["rated_items"][cat["rated_users"] == user].tolist())
    assert not {it["item_id"] for it in items} & rated
    for it in items:
        iv = it["interval"]
        assert iv["level"] == 0.9 and 1 <= iv["lower"] <= it["predicted_rating"] <= iv["upper"] <= 5
    assert len({it["prediction_id"] for it in items}) == len(items)
    everything = _post(rc, {"user_id": user, "k": 500, "exclude_rated": False}).json
    assert everything["k"] == len(everything["items"]) == len(cat["items"]["item_id"])  # capped


def test_candidate_items_restrict_the_ranking(rc, ratings_app):
    user = int(_catalogue(ratings_app)["users"]["user_id"][1])
    body = {"user_id": user, "k": 5, "exclude_rated": False,
            "items": [3, {"item_id": 7, "item_price": 20.0}, 11, 3, 999999]}
    r = _post(rc, body)
    assert r.status_code == 200, r.json
    assert {it["item_id"] for it in r.json["items"]} == {3, 7, 11}
    assert r.json["unknown_items"] == [999999]


def test_only_unknown_candidate_items_are_422_not_500(rc):
    for items in ([999998, 999999], [{"item_id": 999999}]):
        r = _post(rc, {"user_id": 1, "k": 5, "items": items})
        assert r.status_code == 422, r.json
        assert set(r.json) == {"error", "details"} and "none of the items" in r.json["error"]
        assert {d["field"] for d in r.json["details"]} == {"items"}


def test_unknown_user_gets_cold_start_by_item_priors(rc, ratings_app):
    cat = _catalogue(ratings_app)
    r = _post(rc, {"user_id": 987654, "k": 5})
    assert r.status_code == 200 and r.json["cold_start"] is True
    expected = cat["items"]["item_id"][np.argsort(-cat["item_prior"], kind="stable")[:5]]
    assert [it["item_id"] for it in r.json["items"]] == expected.tolist()


@pytest.mark.parametrize("body, field", [
    ({"user_id": 1, "k": 0}, "k"), ({"user_id": 1, "k": 1001}, "k"),
    ({"user_id": 1, "k": "3"}, "k"), ({"user_id": 1, "k": True}, "k"),
    ({"user_id": "abc"}, "user_id"), ({"user_id": 0}, "user_id"), ({"k": 3}, "user_id"),
    ({"user_id": 1, "items": []}, "items"), ({"user_id": 1, "exclude_rated": "no"},
                                             "exclude_rated"),
])
def test_bad_requests_are_422_with_the_field(rc, body, field):
    r = _post(rc, body)
    assert r.status_code == 422, r.json
    assert field in {d["field"] for d in r.json["details"]}


def test_auth_and_unknown_version(rc):
    assert _post(rc, {"user_id": 1}, key=False).status_code == 401
    assert _post(rc, {"user_id": 1, "version_name": "v9_nope"}).status_code == 404


def test_churn_model_answers_a_clean_404(client):
    r = client.post("/recommend", json={"user_id": 1}, headers=headers())
    assert r.status_code == 404 and "not supported" in r.json["error"]
    assert set(r.json) == {"error", "details"}


def test_live_interval_coverage_from_recommendation_feedback(rc, ratings_app, ratings_uri):
    from mlflow.tracking import MlflowClient

    cat = _catalogue(ratings_app)
    answers = []
    for user in cat["users"]["user_id"][:3].tolist():
        answers += _post(rc, {"user_id": user, "k": 10, "exclude_rated": False}).json["items"]
    rng = np.random.default_rng(0)
    truths = rng.integers(1, 6, len(answers)).astype(float)
    feedback = [{"prediction_id": a["prediction_id"], "true_value": t}
                for a, t in zip(answers, truths, strict=True)]
    assert rc.post("/feedback", json=feedback, headers=headers()).status_code == 201
    inside = np.mean([a["interval"]["lower"] <= t <= a["interval"]["upper"]
                      for a, t in zip(answers, truths, strict=True)])
    health = rc.get("/model_health", headers=headers()).json["versions"][0]
    assert health["feedback"] == len(answers) and "live_rmse" in health["live_metrics"]
    assert health["live_metrics"]["live_interval_coverage"] == pytest.approx(inside)
    assert health["interval"]["level"] == 0.9
    assert health["interval"]["live_coverage"] == pytest.approx(inside)
    run_id = MlflowClient(ratings_uri).get_model_version("ratings", "1").run_id
    logged = wait_for(lambda: MlflowClient(ratings_uri).get_run(run_id).data.metrics
                      .get("live_interval_coverage"), timeout=15)
    assert logged == pytest.approx(inside)


@pytest.mark.slow
def test_latency_bench_smoke(ratings_uri, tmp_path):
    out = tmp_path / "recommend_latency.json"
    proc = subprocess.run([sys.executable, "-m", "bench.recommend_latency", "--tracking-uri",
                           ratings_uri, "--workdir", str(tmp_path), "--requests", "30",
                           "--seconds", "10", "--out", str(out)], cwd=ROOT, env=env_with(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["requests"] > 0 and result["errors"] == 0 and result["cold_start_share"] < 1
    assert 0 < result["p50_ms"] <= result["p99_ms"] < 2000


def test_openapi_documents_the_recommend_body_and_fuzzing_finds_no_5xx(rc, ratings_uri,
                                                                         tmp_path):
    from tests.test_fuzz_api import fuzz_report

    doc = rc.get("/openapi.json").json
    body = doc["paths"]["/recommend"]["post"]["requestBody"]["content"]["application/json"]
    schema = doc["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"user_id", "k", "exclude_rated", "items"} <= set(schema["properties"])
    assert schema["required"] == ["user_id"]
    report = fuzz_report(ratings_uri, tmp_path / "fuzz.json", "ratings", examples=8)
    cases = {name: r for name, r in report.items() if name.startswith("POST /recommend")}
    assert cases and sum(r["cases"] for r in cases.values()) > 0, report
    assert "200" in {code for r in cases.values() for code in r["statuses"]}, cases
    assert not any(code.startswith("5") and code != "503" for r in report.values()
                   for code in r["statuses"]), report


def test_true_values_outside_the_rating_range_are_422(rc, ratings_app):
    cat = _catalogue(ratings_app)
    record = {"user_id": int(cat["users"]["user_id"][0]), "user_age": 30, "user_gender": "F",
              "item_id": int(cat["items"]["item_id"][0]), "item_category": "A",
              "item_price": 20.0}
    ok = rc.post("/predict", json={"records": [{**record, "true_value": 4}] * 3},
                 headers=headers())
    assert ok.status_code == 200, ok.json
    for bad in (6, 0.5, 1e308):
        body = {"records": [{**record, "true_value": 4}, {**record, "true_value": bad}]}
        r = rc.post("/predict", json=body, headers=headers())
        assert r.status_code == 422 and r.json["details"][0]["field"] == "records.1.true_value"
        pid = ok.json["predictions"][0]["prediction_id"]
        r = rc.post("/feedback", json={"prediction_id": pid, "true_value": bad},
                    headers=headers())
        assert r.status_code == 422, r.json
