"""schemathesis over every route of /openapi.json (bounded; ``make fuzz`` runs it deeper).

Tests never import ``bench``: the fuzzer runs as ``python -m bench.fuzz_api`` over a registry
copy, and a failing case fails the run with schemathesis' report on stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from caretflow.launch import ROOT, env_with
from tests.app_helpers import copy_registry, ensure_challenger


def fuzz_report(uri: str, out: Path, model_name: str, examples: int) -> dict:
    """``python -m bench.fuzz_api`` (admin key, seed 0) over ``uri``; its per-operation report."""
    cmd = [sys.executable, "-m", "bench.fuzz_api", "--tracking-uri", uri, "--model-name",
           model_name, "--examples", str(examples), "--seed", "0", "--key", "admin",
           "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env_with(uri), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-6000:]
    result = json.loads(out.read_text())
    assert result["model_name"] == model_name and result["examples_per_operation"] == examples
    return result["operations"]


def test_every_route_fuzzed_without_5xx_and_as_documented(tiny_registry, tmp_path):
    uri = copy_registry(tiny_registry, tmp_path / "registry")
    ensure_challenger(uri)  # both arms, as the in-process apps of the other tests have
    report = fuzz_report(uri, tmp_path / "fuzz.json", "churn", examples=6)
    routes = {"POST /predict", "POST /feedback", "GET /versions", "GET /health",
              "POST /load_version/{version_name}", "GET /model_health", "GET /metrics"}
    assert routes <= {name.rsplit(" (", 1)[0] for name in report}
    assert all(r["cases"] > 0 for name, r in report.items() if "(positive)" in name), report
    assert not any(code.startswith("5") and code != "503" for r in report.values()
                   for code in r["statuses"]), report
