"""Per-request shortcuts: answers unchanged, the repeated work done once."""

from __future__ import annotations

import flask.app
from prometheus_client import CollectorRegistry, Counter

from app import telemetry
from app.factory import CaretflowFlask


def test_ensure_sync_asks_once_per_function_and_returns_a_plain_function_as_is(monkeypatch):
    asked = []
    real = flask.app.iscoroutinefunction
    monkeypatch.setattr(flask.app, "iscoroutinefunction",
                        lambda func: asked.append(func) or real(func))
    app = CaretflowFlask("t")

    def view():
        return "ok"

    def other():
        return "other"

    assert app.ensure_sync(view) is view
    assert app.ensure_sync(view) is view
    assert app.ensure_sync(other) is other
    assert asked == [view, other]


def test_requests_through_the_cached_forms_answer_as_flask_does():
    app = CaretflowFlask("t")
    seen = []
    app.before_request(lambda: seen.append("before"))
    app.after_request(lambda response: seen.append("after") or response)
    app.get("/x")(lambda: "hello")
    client = app.test_client()
    for _ in range(3):
        assert client.get("/x").get_data(as_text=True) == "hello"
    assert seen == ["before", "after"] * 3


def test_child_is_the_labelled_child_and_counts_as_it():
    registry = CollectorRegistry()
    counter = Counter("hotpath_test_total", "test", ["route", "status"], registry=registry)
    first = telemetry.child(counter, "/a", "200")
    assert first is counter.labels("/a", "200")
    assert telemetry.child(counter, "/a", "200") is first
    first.inc()
    telemetry.child(counter, "/a", "200").inc(2)
    telemetry.child(counter, "/b", "404").inc()
    assert registry.get_sample_value("hotpath_test_total", {"route": "/a", "status": "200"}) == 3
    assert registry.get_sample_value("hotpath_test_total", {"route": "/b", "status": "404"}) == 1
