"""``app.lean``: the common case of ``/invocations`` and ``/predict`` answered below Flask.

Which of the two answered is seen through a before-request hook that only Flask runs. What
the lean way answers is compared with what Flask answers for the same request, sent so that
the lean way declines it (a content type it does not take).
"""

from __future__ import annotations

import base64
import io
import logging

import pytest
from flask import request
from sqlalchemy import func, select

from app import logs, scoring, telemetry
from app.prediction_log import db
from tests.app_helpers import CLIENT, RECORD, headers, running_app

BODY = {"dataframe_split": {"columns": list(RECORD), "data": [
    list(RECORD.values()), list({**RECORD, "Age": 30}.values())]}}
FLASK_JSON = "application/json; charset=utf-8"  # valid, but only Flask takes it


@pytest.fixture
def flask_saw(shared_app):
    """The paths of the requests Flask's own dispatch handled during the test."""
    seen: list[str] = []

    def hook():
        seen.append(request.path)

    shared_app.before_request_funcs[None].append(hook)
    yield seen
    shared_app.before_request_funcs[None].remove(hook)


def _count(route: str, status: int) -> float:
    return telemetry.get().requests.labels(route, "POST", str(status))._value.get()


def _logged(app, request_id: str) -> list[dict]:
    engine = app.extensions["caretflow"].engine
    with engine.connect() as conn:
        rows = conn.execute(select(db.prediction_groups).where(
            db.prediction_groups.c.request_id == request_id)).mappings().all()
    return [{k: v for k, v in r.items() if k not in ("request_id", "created_at")} for r in rows]


def test_a_plain_json_request_is_answered_below_flask_as_flask_answers_it(client, shared_app,
                                                                          flask_saw):
    before = _count("/invocations", 200)
    lean = client.post("/invocations", json=BODY, headers=headers())
    assert lean.status_code == 200 and flask_saw == []
    via_flask = client.post("/invocations", json=BODY,
                            headers={**headers(), "Content-Type": FLASK_JSON})
    assert via_flask.status_code == 200 and flask_saw == ["/invocations"]
    assert lean.get_data() == via_flask.get_data()
    assert lean.headers["Content-Type"] == via_flask.headers["Content-Type"] == "application/json"
    assert int(lean.headers["Content-Length"]) == len(lean.get_data())
    ids = lean.headers["X-Request-Id"], via_flask.headers["X-Request-Id"]
    assert ids[0] != ids[1] and all(len(i) == 28 for i in ids)
    logged = [_logged(shared_app, i) for i in ids]  # the prediction ids' prefix: the header
    assert logged[0] == logged[1] and len(logged[0]) == 1 and logged[0][0]["size"] == 2
    assert _count("/invocations", 200) == before + 2


def test_bearer_and_basic_keys_are_taken_a_wrong_key_is_left_to_flask(client, flask_saw):
    basic = base64.b64encode(f"me:{CLIENT}".encode()).decode()
    for auth in (f"Bearer {CLIENT}", f"Basic {basic}"):
        assert client.post("/invocations", json=BODY,
                           headers={"Authorization": auth}).status_code == 200
    assert flask_saw == []
    r = client.post("/invocations", json=BODY, headers=headers("not-a-key"))
    assert r.status_code == 401 and flask_saw == ["/invocations"]
    assert "WWW-Authenticate" in r.headers


def test_a_rejected_body_is_explained_by_flask_and_recorded_once(client, shared_app, flask_saw):
    engine = shared_app.extensions["caretflow"].engine
    count = select(func.count()).select_from(db.rejections)
    with engine.connect() as conn:
        before = conn.execute(count).scalar()
    r = client.post("/invocations", json={"dataframe_records": [{**RECORD, "Age": "old"}]},
                    headers=headers())
    assert r.status_code == 422 and flask_saw == ["/invocations"]
    assert r.json["details"][0]["field"] == "records.0.Age"
    with engine.connect() as conn:
        mine = conn.execute(select(func.count()).select_from(db.rejections).where(
            db.rejections.c.request_id == r.headers["X-Request-Id"])).scalar()
        assert mine >= 1 and conn.execute(count).scalar() == before + mine


def test_malformed_json_and_other_types_go_to_flask(client, flask_saw):
    assert client.post("/invocations", data=b"{no", content_type="application/json",
                       headers=headers()).status_code == 400
    csv = ",".join(RECORD) + "\n" + ",".join(map(str, RECORD.values())) + "\n"
    assert client.post("/invocations", data=csv, content_type="text/csv",
                       headers=headers()).status_code == 200
    assert flask_saw == ["/invocations", "/invocations"]


def test_an_error_while_scoring_is_answered_by_flask_error_handlers(client, flask_saw):
    before = _count("/invocations", 404)
    r = client.post("/invocations", headers=headers(),
                    json={**BODY, "params": {"version_name": "no_such_version"}})
    assert r.status_code == 404 and flask_saw == []  # taken lean, the error answered by Flask
    assert r.json["error_code"] == "RESOURCE_DOES_NOT_EXIST" and r.json["message"]
    assert len(r.headers["X-Request-Id"]) == 28
    assert _count("/invocations", 404) == before + 1


def test_an_unexpected_error_is_a_logged_500_with_the_request_id(client, monkeypatch,
                                                                 flask_saw):
    def broken(st, batch):
        raise RuntimeError("scoring broke")

    monkeypatch.setattr(scoring, "predictions", broken)
    out, logger = io.StringIO(), logging.getLogger("app.errors")
    handler = logs.handler(out)  # the server's format, with the request id
    logger.addHandler(handler)
    try:
        r = client.post("/invocations", json=BODY, headers=headers())
    finally:
        logger.removeHandler(handler)
    assert r.status_code == 500 and r.json["error"] == "internal server error"
    assert "scoring broke" not in r.get_data(as_text=True) and flask_saw == []
    line = out.getvalue().splitlines()[0]
    assert f"[{r.headers['X-Request-Id']}]" in line and "unhandled error" in line
    assert "RuntimeError: scoring broke" in out.getvalue()


@pytest.mark.parametrize("settings", [{"RATE_LIMIT": "1000/minute"}, {"LEAN_ROUTES": False}])
def test_no_lean_routes_under_rate_limits_or_when_switched_off(tiny_registry, tmp_path,
                                                               settings):
    with running_app(tiny_registry, tmp_path, BACKGROUND=False, **settings) as app:
        assert app.extensions["caretflow_lean"].routes == {}
        r = app.test_client().post("/invocations", json=BODY, headers=headers())
        assert r.status_code == 200 and len(r.json["predictions"]) == 2


def test_the_lean_routes_are_the_marked_views_own(shared_app):
    routes = shared_app.extensions["caretflow_lean"].routes
    assert set(routes) == {("POST", "/invocations"), ("POST", "/predict")}
    fn, role, rule = routes["POST", "/invocations"]
    assert role == "client" and rule == "/invocations"


def test_a_predict_batch_is_answered_below_flask_a_flat_record_by_flask(client, flask_saw):
    body = {"records": [RECORD, {**RECORD, "Age": 30}]}
    lean = client.post("/predict", json=body, headers=headers())
    assert lean.status_code == 200 and flask_saw == []
    via_flask = client.post("/predict", json=body,
                            headers={**headers(), "Content-Type": FLASK_JSON})
    assert via_flask.status_code == 200 and flask_saw == ["/predict"]

    def answers(r):
        rid, out = r.headers["X-Request-Id"], r.json["predictions"]
        assert [a.pop("prediction_id") for a in out] == [rid + "0000", rid + "0001"]
        return out

    assert answers(lean) == answers(via_flask)
    flat = client.post("/predict", json=RECORD, headers=headers())
    assert flat.status_code == 200 and flask_saw == ["/predict", "/predict"]
    assert flat.json["prediction"] == lean.json["predictions"][0]["prediction"]
