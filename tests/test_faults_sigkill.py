"""Fault: a gunicorn worker is SIGKILLed under load (bench.faults_run.sigkill, shortened)."""

from __future__ import annotations

import pytest

from bench import faults_run
from caretflow.launch import copy_sqlite_store


def exact(result: dict) -> None:
    """0 errors; every acknowledged prediction and feedback is stored."""
    rows = result["rows_stored"]
    assert result["errors"] == 0, result
    assert rows["feedback"] == result["feedback_acknowledged"] > 0, result
    assert rows["distinct_keys"] == result["predictions_acknowledged"] > 0, result


@pytest.mark.slow
def test_worker_sigkill_under_load_loses_no_feedback(tiny_registry, tmp_path):
    registry = copy_sqlite_store(tiny_registry["uri"], tmp_path / "registry")
    result = faults_run.sigkill(registry, tmp_path, seconds=12, kill_after=3, concurrency=3)
    exact(result)
    assert 0 < result["worker_replaced_s"] < 30 and result["serving_again_s"] is not None
    # A prediction cut by the kill and retried may be stored twice, never lost.
    assert result["rows_stored"]["predictions"] - result["predictions_acknowledged"] <= \
        result["retried"]
