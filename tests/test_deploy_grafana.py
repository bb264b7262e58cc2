"""The Grafana dashboard imports as is and queries only what a real /metrics scrape exposes."""

from __future__ import annotations

import json
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.observer import Observer
from caretflow.paths import ROOT
from tests.app_helpers import RECORD, headers, running_app

DASHBOARD = ROOT / "deploy" / "grafana" / "caretflow.json"
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (labels, functions, keywords removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", text)
    text = re.sub(r"(?<![A-Za-z0-9_:])\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", "", text)
    tokens = re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?", text)
    return {t.group(0) for t in tokens if not t.group(1) and t.group(0) not in KEYWORDS}


def _panels() -> list[dict]:
    return json.loads(DASHBOARD.read_text())["panels"]


def test_dashboard_is_importable_json():
    dash = json.loads(DASHBOARD.read_text())
    assert isinstance(dash["schemaVersion"], int) and dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) >= 8
    for p in dash["panels"]:
        assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]
        assert {"x", "y", "w", "h"} <= set(p["gridPos"])


def test_metric_names_parser():
    assert metric_names('histogram_quantile(0.95, sum by (route, le) (rate('
                        'caretflow_http_request_seconds_bucket{route="/x"}[5m])))') == {
        "caretflow_http_request_seconds_bucket"}
    assert metric_names("a_total / clamp_min(b, 1e-9) == 1") == {"a_total", "b"}


@pytest.mark.slow
def test_every_panel_query_names_only_metrics_a_real_scrape_exposes(tiny_registry, tmp_path):
    with running_app(tiny_registry, tmp_path, AB_WEIGHTS="50,50", OBSERVE_SECONDS=3600) as app:
        client = app.test_client()
        records = [{**RECORD, "true_value": i % 2, "CustomerId": i} for i in range(60)]
        r = client.post("/predict", json={"records": records, "enable_ab_testing": True},
                        headers=headers())
        assert r.status_code == 200, r.get_data(as_text=True)
        unlabelled = [{**RECORD, "Age": 20 + i} for i in range(40)]  # estimated metrics
        r = client.post("/predict", json={"records": unlabelled}, headers=headers())
        assert r.status_code == 200, r.get_data(as_text=True)
        r = client.post("/predict", json={**RECORD, "Age": -1}, headers=headers())
        assert r.status_code == 422  # a rejection: caretflow_rejected_rows_total
        Observer(app.extensions["caretflow"]).tick()
        scrape = client.get("/metrics").get_data(as_text=True)
    exposed = {s.name for f in text_string_to_metric_families(scrape) for s in f.samples}
    assert "caretflow_drift_psi" in exposed  # the tick ran: gauges are there
    for panel in _panels():
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, (panel["title"], target["expr"])
            assert names <= exposed, (panel["title"], names - exposed)
