"""Hardening in-process: API keys (files, roles, constant time, never logged), hostile input,
no personal data stored, Swagger UI offline."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest

from app import auth, create_app
from app.auth import KeyRing
from tests.app_helpers import ADMIN, CLIENT, RECORD, app_config, headers, running_app

JSON = {"Content-Type": "application/json"}


def _error(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.data[:300])
    body = r.get_json()
    assert set(body) == {"error", "details"}
    text = r.get_data(as_text=True)
    assert "Traceback" not in text and "/work/" not in text and "/tmp/" not in text
    return body


def test_keys_from_files_roles_and_refusal_without_keys(tiny_registry, tmp_path):
    (tmp_path / "client.keys").write_text("# clients\nfile-client-1\n\nfile-client-2  # note\n")
    (tmp_path / "admin.keys").write_text("file-admin\n")
    with running_app(tiny_registry, tmp_path, API_KEYS="", ADMIN_API_KEYS="", BACKGROUND=False,
                     API_KEYS_FILE=str(tmp_path / "client.keys"),
                     ADMIN_API_KEYS_FILE=str(tmp_path / "admin.keys")) as app:
        c = app.test_client()
        for key in ("file-client-1", "file-client-2", "file-admin"):
            assert c.get("/versions", headers=headers(key)).status_code == 200
        _error(c.get("/versions", headers=headers("# clients")), 401)
        _error(c.get("/versions"), 401)
        _error(c.post("/load_version/v4_xgboost", headers=headers("file-client-1")), 403)
    with pytest.raises(RuntimeError, match="no API keys"):  # before touching anything
        create_app(app_config(tmp_path, API_KEYS="", ADMIN_API_KEYS="", BACKGROUND=False))
    with running_app(tiny_registry, tmp_path / "dev", API_KEYS="", ADMIN_API_KEYS="",
                     BACKGROUND=False, INSECURE_DEV_MODE=True) as app:
        assert app.test_client().get("/versions").status_code == 200


def test_key_check_compares_every_key_whatever_the_input(monkeypatch):
    ring = KeyRing([f"client-{i}" for i in range(5)], ["admin-0", "admin-1"])
    calls = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    for key, role in (("client-0", "client"), ("admin-1", "admin"), ("nope", None),
                      ("x" * 5000, None)):
        calls.clear()
        assert ring.role(key) == role
        assert len(calls) == 7  # no early exit: time does not depend on which key matched


def test_keys_are_never_logged(tiny_registry, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with running_app(tiny_registry, tmp_path, BACKGROUND=False) as app:
        c = app.test_client()
        c.post("/predict", json=RECORD, headers=headers())
        c.post("/load_version/v4_xgboost", headers=headers(ADMIN))
        c.get("/versions", headers=headers("wrong-key-for-logs"))
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    for key in (CLIENT, ADMIN, "wrong-key-for-logs"):
        assert key not in text


@pytest.mark.parametrize("raw", [
    b'{"Age": 1e400}', b'{"Age": -Infinity}', b'{"Age": nan}',
    '{"Geography": "Fr\u00e4nce"}'.encode("utf-16"), '{"Geography": "\u00e4"}'.encode("latin-1"),
    b'{"Geography": "\\ud800"}', b'{"Age": 1}\x00', b"", b" ", b'{"Age": 1} {"Age": 2}',
    b'{"records": ' + b"[" * 2000 + b"]" * 2000 + b"}", b'{"a": {"b": ' * 1100 + b"1" + b"}" * 2200,
])
def test_malformed_bodies_are_400(client, raw):
    _error(client.post("/predict", data=raw, headers={**headers(), **JSON}), 400)


@pytest.mark.parametrize("patch", [
    {"Age": 10**30}, {"Balance": 1e308}, {"EstimatedSalary": -1e308}, {"CreditScore": 2**63},
    {"Age": "NaN"}, {"Age": "42"}, {"Age": True}, {"Geography": "France" * 1000},
    {"Geography": None}, {"Age": [42]}, {"Age": {"$gt": 1}}, {"true_value": 2},
    {"version_name": "x" * 500}, {"enable_ab_testing": "yes please"},
])
def test_hostile_values_are_422_with_the_field(client, patch):
    body = _error(client.post("/predict", json={**RECORD, **patch}, headers=headers()), 422)
    assert any(d["field"].split(".")[0] in patch for d in body["details"]), body


@pytest.mark.parametrize("body", [[], [RECORD], "text", 42, None, {"records": []},
                                  {"records": {"0": RECORD}}, {"records": [RECORD, 5]}])
def test_wrong_shapes_are_422(client, body):
    raw = json.dumps(body).encode()  # ``None`` is the literal ``null`` body
    _error(client.post("/predict", data=raw, headers={**headers(), **JSON}), 422)


def test_wrong_content_types_are_415(client):
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        _error(client.post("/predict", data=b'{"Age": 1}',
                           headers={**headers(), "Content-Type": ctype}), 415)
    _error(client.post("/predict", data=b'{"Age": 1}', headers=headers()), 415)


def test_batch_cap_names_the_cap(tiny_registry, tmp_path):
    with running_app(tiny_registry, tmp_path, MAX_BATCH=3, MAX_CONTENT_LENGTH=2000,
                     BACKGROUND=False) as app:
        c = app.test_client()
        assert c.post("/predict", json={"records": [RECORD] * 3},
                      headers=headers()).status_code == 200
        body = _error(c.post("/predict", json={"records": [RECORD] * 4}, headers=headers()), 413)
        assert "3" in body["error"]
        truths = [{"prediction_id": str(i), "true_value": 1} for i in range(4)]
        assert "3" in _error(c.post("/feedback", json=truths, headers=headers()), 413)["error"]
        _error(c.post("/predict", json={"records": [RECORD] * 3, "pad": "x" * 2000},
                      headers=headers()), 413)


def test_personal_data_and_identifiers_are_never_stored(tiny_registry, tmp_path):
    with running_app(tiny_registry, tmp_path, BACKGROUND=False) as app:
        record = {**RECORD, "Surname": "Hargrave-Secret", "RowNumber": 987654,
                  "CustomerId": 15634602, "true_value": 1}
        r = app.test_client().post("/predict", json=record, headers=headers())
        assert r.status_code == 200 and "Hargrave" not in r.get_data(as_text=True)
        db = app.extensions["caretflow"].settings.PREDICTION_DB_URL.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
        routing = conn.execute("select routing from prediction_groups").fetchall()
    assert "Hargrave" not in dump and "987654" not in dump
    assert routing == [('["15634602"]',)]


def test_swagger_ui_is_served_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.get_data(as_text=True)
    assert "http" not in page.get_data(as_text=True).replace("window.location.href", "")
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        r = client.get(f"/docs/assets/{asset}")
        assert r.status_code == 200 and len(r.data) > 10_000
    _error(client.get("/docs/assets/..%2f..%2fapp%2fauth.py"), 404)
    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.") and "/predict" in doc["paths"]


def test_gunicorn_config_bounds_requests(monkeypatch, tmp_path):
    import runpy

    for name, value in {"GUNICORN_TIMEOUT": "7", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
                        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                        "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}.items():
        monkeypatch.setenv(name, value)
    conf = runpy.run_path(str(auth.__file__).replace("auth.py", "gunicorn.conf.py"))
    assert conf["timeout"] == 7 and not conf["preload_app"]
    assert conf["limit_request_line"] <= 8190 and conf["limit_request_fields"] <= 100
