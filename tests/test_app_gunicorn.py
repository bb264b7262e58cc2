"""Real gunicorn with 2 workers: a /load_version through one request reaches every worker."""

from __future__ import annotations

import time

import pytest
import requests

from tests.app_helpers import (
    ADMIN,
    RECORD,
    copy_registry,
    ensure_challenger,
    headers,
    start_gunicorn,
)


@pytest.mark.slow
def test_load_version_is_served_by_every_worker_within_5_s(tiny_registry, tmp_path):
    uri = copy_registry(tiny_registry, tmp_path / "registry")
    ensure_challenger(uri)
    server = start_gunicorn(tmp_path, uri, workers=2, ALIAS_REFRESH_SECONDS="1")
    base = server.url
    try:
        seen: dict[int, str] = {}
        deadline = time.time() + 60
        while len(seen) < 2 and time.time() < deadline:  # wait until both workers are up
            body = requests.get(f"{base}/health", timeout=5).json()
            if body["ready"]:
                seen[body["worker_pid"]] = body["default_version"]
        assert len(seen) == 2, "the second worker never answered"
        current = next(iter(seen.values()))
        other = requests.get(f"{base}/versions", headers=headers(), timeout=5).json()
        target = next(v for v in other["versions"] if v["version"] != current)
        r = requests.post(f"{base}/load_version/{target['version_name']}",
                          headers=headers(ADMIN), timeout=30)
        assert r.status_code == 200, r.text
        moved_at, switched = time.time(), {}
        while len(switched) < 2 and time.time() - moved_at < 5:
            body = requests.get(f"{base}/health", timeout=5).json()
            if body["default_version"] == target["version"]:
                switched.setdefault(body["worker_pid"], time.time() - moved_at)
        assert len(switched) == 2, f"workers switched: {switched}"
        answers = [requests.post(f"{base}/predict", json=RECORD, headers=headers(),
                                 timeout=5).json() for _ in range(10)]
        assert {a["model_version"] for a in answers} == {target["version"]}
        metrics = requests.get(f"{base}/metrics", timeout=5).text
        assert "caretflow_predictions_total" in metrics  # multiprocess exposition
    finally:
        server.stop()
