"""One real ``mlflow server`` (on PostgreSQL when the service is there) for three checks:
start with the registry down, the two-instance scale-out set-up, a tracking-server outage.

Run in this order on purpose: they share the server (one start-up instead of three).
"""

from __future__ import annotations

import contextlib

import pytest

from bench import faults_run
from bench.faults_scaleout import LIMIT, scaleout
from caretflow.launch import copy_sqlite_store
from tests.services import REDIS, _postgres_error, fresh_database, require_postgres, require_redis
from tests.test_faults_sigkill import exact

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tracking(tiny_registry, tmp_path_factory):
    """A published ``mlflow server``: PostgreSQL backend when available, else SQLite."""
    work = tmp_path_factory.mktemp("tracking")
    registry = copy_sqlite_store(tiny_registry["uri"], work / "registry")
    with contextlib.ExitStack() as stack:
        backend = None if _postgres_error() else stack.enter_context(fresh_database("cf_mlflow"))
        yield stack.enter_context(faults_run.published(registry, work, backend))


def test_start_with_registry_unreachable_then_ready(tracking, tmp_path):
    result = faults_run.registry_start(tracking, tmp_path, outage=3)
    assert result["status_while_down"] == "not_ready" and not result["ready_while_down"]
    assert result["registry_error_reported"] and result["predict_while_down"] == 503
    assert result["ready_after_return"] and result["predict_after_return"] == 200


@pytest.mark.services
def test_two_instances_share_registry_predictions_and_limits(tracking, tmp_path):
    require_postgres()
    require_redis()
    assert tracking.backend.startswith("postgresql"), "the mlflow server runs on PostgreSQL"
    with fresh_database("cf_predictions") as url:
        result = scaleout(tracking, tmp_path, url, REDIS)
    switch, fb, limit = result["switch"], result["feedback"], result["rate_limit"]
    assert switch["all_workers_switched"] and switch["other_instance_serves_after_s"] < 5, switch
    assert switch["predict_on_other_instance_version"] == switch["target_version"]
    assert fb["feedback_recorded"] == fb["feedback_sent"] and fb["live_metric_copies_at_step"] == 1
    assert limit["allowed"] == LIMIT and limit["limited_429"] == limit["sent"] - LIMIT, limit


def test_mlflow_server_outage_keeps_serving_and_replays_live_metrics(tracking, tmp_path):
    result = faults_run.mlflow_outage(tracking, tmp_path, outage=8, concurrency=2)
    exact(result)
    assert result["rows_stored"]["predictions"] == result["predictions_acknowledged"]
    assert result["health_during_outage"] == "degraded"
    assert result["live_metrics_synced"], result["live_metrics"]
