"""A/B routing: sticky per customer, weights respected, arm recorded; shadow mode."""

from __future__ import annotations

import sqlite3

from app.routing import bucket
from tests.app_helpers import RECORD, headers, running_app


def _arms(client, customer_ids) -> list[str]:
    records = [{**RECORD, "CustomerId": c} for c in customer_ids]
    r = client.post("/predict", json={"records": records, "enable_ab_testing": True},
                    headers=headers())
    assert r.status_code == 200
    return [p["arm"] for p in r.json["predictions"]]


def test_ab_is_sticky_per_customer_and_roughly_weighted(client, shared_app):
    st = shared_app.extensions["caretflow"]
    ids = list(range(15_000_000, 15_000_400))
    first = _arms(client, ids)
    assert first == _arms(client, ids)  # same customer, same arm
    assert first == [_arms(client, [c])[0] for c in ids[:20]] + first[20:]
    assert set(first) == {"champion", "challenger"}
    share = first.count("challenger") / len(first)
    assert 0.04 < share < 0.18, share
    expected = ["challenger" if bucket(str(c)) >= 0.9 else "champion" for c in ids]
    assert first == expected
    one = client.post("/predict", json={**RECORD, "CustomerId": ids[0], "enable_ab_testing": True},
                      headers=headers()).json
    version = st.store.challenger if first[0] == "challenger" else st.store.default
    assert one["arm"] == first[0] and one["model_version"] == version.version


def test_without_routing_key_arm_follows_prediction_id(client):
    r = client.post("/predict", json={"records": [RECORD] * 200, "enable_ab_testing": True},
                    headers=headers())
    for p in r.json["predictions"]:
        assert p["arm"] == ("challenger" if bucket(p["prediction_id"]) >= 0.9 else "champion")


def test_arm_is_recorded_and_shadow_mode_logs_the_challenger(tiny_registry, tmp_path):
    with running_app(tiny_registry, tmp_path, SHADOW_MODE=True, BACKGROUND=False) as app:
        st = app.extensions["caretflow"]
        answer = app.test_client().post("/predict", json=RECORD, headers=headers()).json
        assert answer["arm"] == "default" and answer["model_version"] == st.store.default.version
        db = st.settings.PREDICTION_DB_URL.removeprefix("sqlite:///")
        with sqlite3.connect(db) as conn:
            rows = conn.execute("select request_id, arm, model_version, size "
                                "from prediction_groups").fetchall()
    request = answer["prediction_id"][:28]
    assert sorted(rows) == [(request, "default", st.store.default.version, 1),
                            (request, "shadow", st.store.challenger.version, 1)]
