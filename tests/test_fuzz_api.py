"""schemathesis over every route of /openapi.json (bounded; ``make fuzz`` runs it deeper)."""

from __future__ import annotations

from bench.fuzz_api import fuzz
from tests.app_helpers import ADMIN


def test_every_route_fuzzed_without_5xx_and_as_documented(shared_app):
    report = fuzz(shared_app, max_examples=6, key=ADMIN)
    routes = {"POST /predict", "POST /feedback", "GET /versions", "GET /health",
              "POST /load_version/{version_name}", "GET /model_health", "GET /metrics"}
    assert routes <= {name.rsplit(" (", 1)[0] for name in report}
    assert all(r["cases"] > 0 for name, r in report.items() if "(positive)" in name), report
    assert not any(code.startswith("5") and code != "503" for r in report.values()
                   for code in r["statuses"]), report
