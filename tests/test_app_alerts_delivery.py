"""Alerts: one row per change across workers, delivered once per URL, retried while down."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.alerts import delivery, events
from app.alerts.events import Change
from app.prediction_log.db import make_engine
from caretflow.launch import free_port


class Receiver:
    """A real webhook receiver on loopback that can be stopped and started again."""

    def __init__(self):
        self.port, self.got, self.server, self.thread = free_port(), [], None, None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self):
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    r.start()
    yield r
    r.stop()


def _health_change(old, new):
    if new == "degraded":
        return Change("model_degraded", f"churn version 3 is degraded (was {old})", {"x": 1})
    if old == "degraded" and new == "healthy":
        return Change("model_recovered", "churn version 3 recovered", hold=True)
    return None


def _workers(tmp_path, n=2):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    return [make_engine(url) for _ in range(n)]


def test_a_change_seen_by_two_workers_is_one_alert_and_one_post(tmp_path, receiver):
    a, b = _workers(tmp_path)
    urls = (receiver.url,)
    for engine in (a, b):
        assert events.observe(engine, "churn", "3", "health", "healthy", _health_change,
                              urls) is None
    written = [events.observe(e, "churn", "3", "health", "degraded", _health_change, urls)
               for e in (a, b, a)]
    assert sum(w is not None for w in written) == 1
    assert [r["kind"] for r in events.recent(b)] == ["model_degraded"]
    sent = sum(delivery.Deliverer(e).tick() for e in (a, b, a, b))
    assert sent == 1 and len(receiver.got) == 1
    body = receiver.got[0]
    assert set(body) == {"alert_id", "kind", "model_name", "model_version", "status", "text",
                         "details", "created_at"}
    assert body["kind"] == "model_degraded" and body["details"] == {"x": 1}
    assert events.recent(a)[0]["deliveries"][0]["sent_at"] is not None


def test_first_observation_degraded_alerts_and_recovery_must_hold(tmp_path):
    (engine,) = _workers(tmp_path, 1)
    t0 = 1000.0
    first = events.observe(engine, "churn", "3", "health", "degraded", _health_change, (),
                           hold_seconds=60, now=t0)
    assert first is not None and first["kind"] == "model_degraded"
    assert events.observe(engine, "churn", "3", "health", "healthy", _health_change, (),
                          hold_seconds=60, now=t0 + 10) is None  # not held yet
    assert events.observe(engine, "churn", "3", "health", "degraded", _health_change, (),
                          hold_seconds=60, now=t0 + 20) is None  # flapped back: no alert
    assert events.observe(engine, "churn", "3", "health", "healthy", _health_change, (),
                          hold_seconds=60, now=t0 + 30) is None
    rec = events.observe(engine, "churn", "3", "health", "healthy", _health_change, (),
                         hold_seconds=60, now=t0 + 95)
    assert rec is not None and rec["kind"] == "model_recovered"
    assert [r["kind"] for r in events.recent(engine)] == ["model_recovered", "model_degraded"]


def test_a_receiver_that_is_down_gets_the_alert_once_when_back(tmp_path, monkeypatch):
    r = Receiver()
    (engine,) = _workers(tmp_path, 1)
    monkeypatch.setattr(delivery, "backoff", lambda attempts: 0.2)
    events.record_event(engine, "promoted", "churn", "4", "champion", "churn v4 promoted",
                        {}, (r.url,), key="p1")
    assert events.record_event(engine, "promoted", "churn", "4", "champion", "again", {},
                               (r.url,), key="p1") is None  # same event: no second alert
    sender = delivery.Deliverer(engine, timeout=1.0)
    assert sender.tick() == 0  # nobody listening
    r.start()
    try:
        deadline = time.time() + 10
        while not r.got and time.time() < deadline:
            sender.tick()
            time.sleep(0.1)
        for _ in range(3):
            sender.tick()
    finally:
        r.stop()
    assert len(r.got) == 1 and r.got[0]["kind"] == "promoted"
    attempts = events.recent(engine)[0]["deliveries"][0]["attempts"]
    assert attempts >= 1
