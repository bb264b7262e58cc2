"""Fault: a gunicorn worker is SIGKILLed under load (``bench.faults_run sigkill``, shortened).

Tests never import ``bench``: the scenario runs as ``python -m bench.faults_run``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from caretflow.launch import ROOT, env_with


def faults_run(uri: str, out_dir: Path, *args: str, timeout: float = 900) -> None:
    """``python -m bench.faults_run <args> --tracking-uri uri --out-dir out_dir``.

    Its exit status is not checked here: ``scenario_result`` reports a failed scenario (or a
    run that wrote nothing) with the scenario's traceback or the run's stderr.
    """
    cmd = [sys.executable, "-m", "bench.faults_run", *args, "--tracking-uri", uri,
           "--out-dir", str(out_dir)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env_with(uri), capture_output=True, text=True,
                          timeout=timeout)
    (out_dir / "stderr.txt").write_text(proc.stderr)


def scenario_result(out_dir: Path, scenario: str) -> dict:
    """The figures ``faults_run`` wrote for ``scenario``; fails with its error if it raised."""
    path = out_dir / f"{scenario}.json"
    if not path.exists():
        pytest.fail(f"no result for {scenario}:\n{(out_dir / 'stderr.txt').read_text()[-6000:]}")
    figures = json.loads(path.read_text())
    assert "error" not in figures, figures["error"]
    return figures


def exact(result: dict) -> None:
    """0 errors; every acknowledged prediction and feedback is stored."""
    rows = result["rows_stored"]
    assert result["errors"] == 0, result
    assert rows["feedback"] == result["feedback_acknowledged"] > 0, result
    assert rows["distinct_keys"] == result["predictions_acknowledged"] > 0, result


@pytest.mark.slow
def test_worker_sigkill_under_load_loses_no_feedback(tiny_registry, tmp_path):
    faults_run(tiny_registry["uri"], tmp_path, "sigkill", "--seconds", "12", "--kill-after", "3",
               "--concurrency", "3")
    figures = scenario_result(tmp_path, "sigkill")
    exact(figures)
    assert 0 < figures["worker_replaced_s"] < 30 and figures["serving_again_s"] is not None
    # A prediction cut by the kill and retried may be stored twice, never lost.
    assert figures["rows_stored"]["predictions"] - figures["predictions_acknowledged"] <= \
        figures["retried"]
