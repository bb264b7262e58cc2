"""One real ``mlflow server`` (on PostgreSQL when the service is there) for three checks:
start with the registry down, the two-instance scale-out set-up, a tracking-server outage.

One ``python -m bench.faults_run registry_start scaleout mlflow_outage`` run performs them,
in this order on purpose: they share the server (one start-up instead of three). The
scale-out check joins only when PostgreSQL and Redis are there and its test is selected.
"""

from __future__ import annotations

import contextlib

import pytest

from tests.services import (
    _postgres_error,
    _redis_error,
    fresh_database,
    require_postgres,
    require_redis,
)
from tests.test_faults_sigkill import exact, faults_run, scenario_result

pytestmark = pytest.mark.slow
SCALEOUT_TEST = "test_two_instances_share_registry_predictions_and_limits"


@pytest.fixture(scope="module")
def faults(tiny_registry, tmp_path_factory, request):
    """The directory of the three scenarios' results (see ``scenario_result``)."""
    out = tmp_path_factory.mktemp("faults")
    postgres = not _postgres_error()
    scaleout = postgres and not _redis_error() and any(
        item.name == SCALEOUT_TEST for item in request.session.items)
    with contextlib.ExitStack() as stack:
        args = ["registry_start:outage=3"]
        if postgres:
            args += ["--mlflow-backend", stack.enter_context(fresh_database("cf_mlflow"))]
        if scaleout:
            args += ["scaleout", "--prediction-db",
                     stack.enter_context(fresh_database("cf_predictions"))]
        faults_run(tiny_registry["uri"], out, *args, "mlflow_outage:outage=8,concurrency=2")
        yield out


def test_start_with_registry_unreachable_then_ready(faults):
    result = scenario_result(faults, "registry_start")
    assert result["status_while_down"] == "not_ready" and not result["ready_while_down"]
    assert result["registry_error_reported"] and result["predict_while_down"] == 503
    assert result["ready_after_return"] and result["predict_after_return"] == 200


@pytest.mark.services
def test_two_instances_share_registry_predictions_and_limits(faults):
    require_postgres()
    require_redis()
    result = scenario_result(faults, "scaleout")
    assert result["mlflow_backend"].startswith("postgresql"), "the mlflow server runs on PostgreSQL"
    switch, fb, limit = result["switch"], result["feedback"], result["rate_limit"]
    assert switch["all_workers_switched"] and switch["other_instance_serves_after_s"] < 5, switch
    assert switch["predict_on_other_instance_version"] == switch["target_version"]
    assert fb["feedback_recorded"] == fb["feedback_sent"] and fb["live_metric_copies_at_step"] == 1
    assert limit["allowed"] == limit["limit"] == 200, limit  # bench.faults_scaleout.LIMIT
    assert limit["limited_429"] == limit["sent"] - limit["limit"], limit


def test_mlflow_server_outage_keeps_serving_and_replays_live_metrics(faults):
    result = scenario_result(faults, "mlflow_outage")
    exact(result)
    assert result["rows_stored"]["predictions"] == result["predictions_acknowledged"]
    assert result["health_during_outage"] == "degraded"
    assert result["live_metrics_synced"], result["live_metrics"]
