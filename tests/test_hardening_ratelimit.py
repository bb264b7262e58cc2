"""Rate limits per key: 429 with Retry-After; shared by two app instances through Redis."""

from __future__ import annotations

import uuid

import pytest

from tests.app_helpers import CLIENT, RECORD, headers, running_app
from tests.services import REDIS, require_redis


def _predict(app, key: str):
    return app.test_client().post("/predict", json=RECORD, headers=headers(key))


def test_limit_per_key_with_retry_after(tiny_registry, tmp_path):
    other = "second-client-key"
    with running_app(tiny_registry, tmp_path, RATE_LIMIT="5/minute", BACKGROUND=False,
                     API_KEYS=f"limited-key,{other}") as app:
        codes = [_predict(app, "limited-key").status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        r = _predict(app, "limited-key")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert r.get_json()["error"] == "rate limit exceeded"
        assert _predict(app, other).status_code == 200  # another key has its own bucket
        assert app.test_client().get("/health").status_code == 200  # open routes: no limit


@pytest.mark.services
def test_two_instances_share_one_limit_through_redis(tiny_registry, tmp_path):
    require_redis()
    key = f"redis-limit-{uuid.uuid4().hex}"  # a fresh bucket on every run
    cfg = {"RATE_LIMIT": "6/minute", "RATE_LIMIT_STORAGE_URI": REDIS, "BACKGROUND": False,
           "API_KEYS": key}
    with running_app(tiny_registry, tmp_path / "a", **cfg) as one, \
            running_app(tiny_registry, tmp_path / "b", **cfg) as two:
        codes = [_predict(app, key).status_code for app in (one, two) * 3]
        assert codes == [200] * 6
        assert _predict(one, key).status_code == 429
        r = _predict(two, key)
        assert r.status_code == 429 and "Retry-After" in r.headers


def test_unreachable_limit_storage_falls_back_to_memory(tiny_registry, tmp_path):
    with running_app(tiny_registry, tmp_path, RATE_LIMIT="3/minute", BACKGROUND=False,
                     RATE_LIMIT_STORAGE_URI="redis://127.0.0.1:9") as app:  # nothing there
        codes = [_predict(app, CLIENT).status_code for _ in range(4)]
    assert codes == [200] * 3 + [429]
