"""The shipped Prometheus alert rules, checked and unit-tested by Prometheus' own promtool."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        reason = ("promtool not found: install Debian's `prometheus` package (make system-deps) "
                  "to test deploy/prometheus/alerts.yml")
        warnings.warn(reason, stacklevel=2)
        pytest.skip(reason)
    return path


def test_alert_rules_are_valid():
    out = subprocess.run([_promtool(), "check", "rules", str(RULES / "alerts.yml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "6 rules found" in out.stdout


def test_alert_rules_pass_their_unit_tests():
    out = subprocess.run([_promtool(), "test", "rules", "alerts_test.yml"], cwd=RULES,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout
