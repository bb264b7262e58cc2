"""Server logs: request ids on responses and log lines, tracebacks of unhandled errors.

The unhandled error under gunicorn is a real fault, not a hook: the Prometheus multiprocess
directory is deleted under the running server (as a /tmp cleaner would), so /metrics fails
inside prometheus_client. The client must get a JSON 500 and the request id; the server log
the traceback under that id.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import time

import pytest
import requests

from app import logs
from tests.app_helpers import RECORD, copy_registry, headers, start_gunicorn

RID = re.compile(r"[0-9a-f]{28}")
LINE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+\+00:00 \[\d+\] \[([A-Z]+)\] \[([-0-9a-f]+)\] "
                  r"([\w.]+): (.*)$")


def test_every_answer_carries_its_request_id_and_prediction_ids_start_with_it(client):
    r = client.post("/predict", json={"records": [RECORD, RECORD]}, headers=headers())
    rid = r.headers["X-Request-Id"]
    assert r.status_code == 200 and RID.fullmatch(rid)
    assert [p["prediction_id"] for p in r.json["predictions"]] == [f"{rid}0000", f"{rid}0001"]
    again = client.post("/predict", json=RECORD, headers=headers())
    assert again.json["prediction_id"] == again.headers["X-Request-Id"] + "0000" != rid + "0000"
    refused = client.post("/predict", json=RECORD)  # 401 before the view runs
    assert refused.status_code == 401 and RID.fullmatch(refused.headers["X-Request-Id"])


def test_an_unhandled_error_is_logged_with_its_request_id_and_answered_without_internals(
        client, monkeypatch):
    from app import telemetry

    def broken():
        raise RuntimeError("exposition failed at /secret/path")

    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setattr(telemetry, "exposition", broken)
    out, logger = io.StringIO(), logging.getLogger("app")
    handler = logs.handler(out)
    logger.addHandler(handler)
    try:
        r = client.get("/metrics")
    finally:
        logger.removeHandler(handler)
    assert r.status_code == 500
    assert r.json == {"error": "internal server error", "details": []}
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    error = next(rec for rec in records if rec["level"] == "ERROR")
    assert error["request_id"] == r.headers["X-Request-Id"]
    assert error["logger"] == "app.errors" and error["message"] == "unhandled error in GET /metrics"
    assert "Traceback" in error["exc_info"] and "RuntimeError: exposition failed" in error[
        "exc_info"]


def test_create_app_leaves_a_configured_host_alone_and_logs_to_stderr_otherwise(monkeypatch):
    ours = [logging.getLogger(name) for name in logs.LOGGERS]
    before = [list(lg.handlers) for lg in ours]
    logs.ensure_handlers()  # pytest's capture handler is on the root logger
    assert [list(lg.handlers) for lg in ours] == before
    monkeypatch.setattr(logging.root, "handlers", [])
    for lg in ours:
        monkeypatch.setattr(lg, "handlers", [logging.NullHandler()])
        monkeypatch.setattr(lg, "level", lg.level)
    monkeypatch.setenv("LOG_LEVEL", "warning")
    logs.ensure_handlers()
    logs.ensure_handlers()
    for lg in ours:
        added = [h for h in lg.handlers if not isinstance(h, logging.NullHandler)]
        assert len(added) == 1 and isinstance(added[0].formatter, logs.LineFormatter)
        assert lg.level == logging.WARNING


def test_levels_and_formats_are_checked(monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("LOG_FORMAT", "json")
    cfg = logs.gunicorn_config(None)
    assert cfg["loggers"]["app"]["level"] == "DEBUG" and cfg["root"]["level"] == "WARNING"
    assert cfg["formatters"]["caretflow"]["()"].endswith("JsonFormatter")
    assert cfg["loggers"]["gunicorn.access"]["handlers"] == []
    monkeypatch.setenv("LOG_LEVEL", "error")
    assert logs.gunicorn_config("-")["root"]["level"] == "ERROR"
    monkeypatch.setenv("LOG_LEVEL", "verbose")
    with pytest.raises(ValueError, match="LOG_LEVEL"):
        logs.level()
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logs.log_format()


def _break_metrics(server) -> requests.Response:
    """Both workers up, then the Prometheus directory deleted: /metrics fails on the server."""
    pids, deadline = set(), time.time() + 60
    while len(pids) < 2 and time.time() < deadline:
        pids.add(requests.get(f"{server.url}/health", timeout=5).json()["worker_pid"])
    assert len(pids) == 2, "the second worker never answered"
    assert requests.post(f"{server.url}/predict", json=RECORD, headers=headers(),
                         timeout=10).status_code == 200
    shutil.rmtree(server.env["PROMETHEUS_MULTIPROC_DIR"])
    r = requests.get(f"{server.url}/metrics", timeout=10)
    assert r.status_code == 500, r.text
    assert r.json() == {"error": "internal server error", "details": []}
    assert RID.fullmatch(r.headers["X-Request-Id"])
    return r


@pytest.mark.slow
def test_gunicorn_log_has_the_traceback_under_the_request_id_the_client_got(
        tiny_registry, tmp_path):
    server = start_gunicorn(tmp_path, copy_registry(tiny_registry, tmp_path / "registry"))
    try:
        rid = _break_metrics(server).headers["X-Request-Id"]
    finally:
        server.stop()
    lines = server.log_path.read_text().splitlines()
    parsed = [(i, m.groups()) for i, line in enumerate(lines) if (m := LINE.match(line))]
    assert any(name == "gunicorn.error" and "Booting worker" in text
               for _, (_, _, name, text) in parsed)  # gunicorn's own lines share the format
    assert not [line for line in lines if line.startswith("[")]  # none in gunicorn's format
    assert any(name.startswith("app.") and level == "INFO"  # the app's own lines are written
               for _, (level, _, name, _) in parsed)
    at, _ = next((i, g) for i, g in parsed
                 if g == ("ERROR", rid, "app.errors", "unhandled error in GET /metrics"))
    traceback = "\n".join(lines[at + 1:at + 60])
    assert traceback.startswith("Traceback (most recent call last)")
    assert "ValueError: env PROMETHEUS_MULTIPROC_DIR is not set or not a directory" in traceback


@pytest.mark.slow
def test_gunicorn_json_log_lines_parse_and_carry_the_request_id(tiny_registry, tmp_path):
    server = start_gunicorn(tmp_path, copy_registry(tiny_registry, tmp_path / "registry"),
                            LOG_FORMAT="json", ACCESS_LOG="-")
    try:
        rid = _break_metrics(server).headers["X-Request-Id"]
    finally:
        server.stop()
    records = [json.loads(line) for line in server.log_path.read_text().splitlines() if line]
    assert {"time", "level", "logger", "message", "request_id", "exc_info"} <= set(records[0])
    mine = [rec for rec in records if rec["request_id"] == rid]
    error = next(rec for rec in mine if rec["level"] == "ERROR")
    assert error["logger"] == "app.errors" and "Traceback" in error["exc_info"]
    assert "PROMETHEUS_MULTIPROC_DIR" in error["exc_info"]
    access = next(rec for rec in mine if rec["logger"] == "gunicorn.access")
    assert '"GET /metrics HTTP/1.1" 500' in access["message"]
    assert any(rec["logger"] == "gunicorn.error" and rec["request_id"] == "-" for rec in records)
