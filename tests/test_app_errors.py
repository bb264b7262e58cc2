"""One test per class of bad request: JSON errors, never a 500, no internals echoed."""

from __future__ import annotations

import pytest

from tests.app_helpers import ADMIN, RECORD, headers, running_app


def _is_error(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.data[:300])
    body = r.get_json()
    assert set(body) == {"error", "details"} and isinstance(body["details"], list)
    text = r.get_data(as_text=True)
    assert "Traceback" not in text and "/work/" not in text and "/tmp/" not in text
    return body


def test_401_without_or_with_unknown_key(client):
    _is_error(client.post("/predict", json=RECORD), 401)
    _is_error(client.get("/versions", headers=headers("not-a-key")), 401)


def test_403_client_key_on_admin_route(client):
    _is_error(client.post("/load_version/v4_xgboost", headers=headers()), 403)


def test_404_unknown_version_and_route(client):
    _is_error(client.post("/predict", json={**RECORD, "version_name": "v9_nothing"},
                          headers=headers()), 404)
    _is_error(client.post("/load_version/v9_nothing", headers=headers(ADMIN)), 404)
    _is_error(client.post("/feedback", json={"prediction_id": "nope", "true_value": 1},
                          headers=headers()), 404)
    _is_error(client.get("/no/such/route"), 404)


def test_413_body_or_batch_too_large(client, shared_app):
    cap = shared_app.extensions["caretflow"].settings.MAX_CONTENT_LENGTH
    _is_error(client.post("/predict", data=b'{"a": "' + b"x" * cap + b'"}', headers={
        **headers(), "Content-Type": "application/json"}), 413)
    cap_batch = shared_app.extensions["caretflow"].settings.MAX_BATCH
    body = _is_error(client.post("/predict", json={"records": [{}] * (cap_batch + 1)},
                                 headers=headers()), 413)
    assert str(cap_batch) in body["error"]


def test_415_not_json(client):
    _is_error(client.post("/predict", data="CreditScore=600", headers={
        **headers(), "Content-Type": "application/x-www-form-urlencoded"}), 415)


@pytest.mark.parametrize("raw", [b"{not json", b'{"Age": NaN}', b'{"Age": Infinity}',
                                 b"\xff\xfe{}", b"[" * 5000 + b"]" * 5000])
def test_400_malformed_json(client, raw):
    _is_error(client.post("/predict", data=raw, headers={
        **headers(), "Content-Type": "application/json"}), 400)


def test_422_one_entry_per_bad_field(client):
    bad = {**RECORD, "Age": 7, "Geography": "Mars", "Balance": "lots", "HasCrCard": True}
    del bad["Tenure"]
    body = _is_error(client.post("/predict", json=bad, headers=headers()), 422)
    fields = sorted(d["field"] for d in body["details"])
    assert fields == ["Age", "Balance", "Geography", "HasCrCard", "Tenure"]
    batch = _is_error(client.post("/predict", json={"records": [RECORD, {**RECORD, "Age": 7}]},
                                  headers=headers()), 422)
    assert [d["field"] for d in batch["details"]] == ["records.1.Age"]
    _is_error(client.post("/predict", json=[RECORD], headers=headers()), 422)
    _is_error(client.post("/feedback", json={"prediction_id": "x", "true_value": 3},
                          headers=headers()), 422)


def test_429_rate_limited_per_key(tiny_registry, tmp_path):
    with running_app(tiny_registry, tmp_path, RATE_LIMIT="3/minute", BACKGROUND=False) as app:
        c = app.test_client()
        codes = [c.get("/versions", headers=headers()).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        body = _is_error(c.get("/versions", headers=headers()), 429)
        assert "rate limit" in body["error"]
        assert c.get("/versions", headers=headers()).headers.get("Retry-After")
        assert c.get("/versions", headers=headers(ADMIN)).status_code == 200  # own bucket
        assert c.get("/health").status_code == 200  # never limited
