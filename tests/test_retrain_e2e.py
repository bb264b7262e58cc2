"""Retraining end to end, real processes: an mlflow server, gunicorn with 2 workers, a webhook
receiver and the watcher. The drifting churn scenario degrades the champion; the watcher
starts ``retrain``; the retrained version is promoted and is better on post-drift traffic."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests
from mlflow.tracking import MlflowClient

from caretflow.data.drift_scenario import churn_scenario
from caretflow.data.replay import replay
from caretflow.launch import Gunicorn, MlflowServer, wait_until
from caretflow.watcher.observe import follow, watch_process
from tests.app_helpers import CLIENT, copy_registry, headers
from tests.test_app_alerts_delivery import Receiver

# 600 pre-drift and 1800 post-drift labels: the champion's live ROC AUC over the window
# falls below the 0.80 gate; 600 fresh post-drift records compare the two models after.
SCENARIO = {"n_before": 600, "n_after": 1800, "n_fresh": 600, "seed": 0}
STARTUP = 180  # seconds a server may take to become ready on a loaded machine


def _watch(server, tracking: str, db: str, hook: str, state: str) -> subprocess.Popen:
    return watch_process("churn", server.url, tracking, state, [
        "--prediction-db", db, "watch.consecutive=2", "watch.min_new_labels=1000",
        "watch.retrain.window_hours=24", "watch.retrain.policy=replace",
        "watch.retrain.overrides='profile=quick retrain.promote=direct'"],
        API_KEYS=CLIENT, ALERT_WEBHOOK_URLS=hook)


def _output(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def _champion_entry(server) -> dict:
    version = server.health()["default_version"]
    body = requests.get(f"{server.url}/model_health", headers=headers(), timeout=10).json()
    return next(v for v in body["versions"] if v["version"] == version)


@pytest.mark.slow
def test_a_drifted_champion_is_retrained_promoted_and_better_on_post_drift_traffic(
        tiny_registry, tmp_path):
    hook = Receiver()
    hook.start()
    tracking = MlflowServer(tmp_path / "mlflow", copy_registry(tiny_registry,
                                                              tmp_path / "backend")).start(STARTUP)
    server = None
    try:
        server = Gunicorn(tmp_path, tracking.url, workers=2, API_KEYS=CLIENT, OBSERVE_SECONDS=0.5,
                          ALIAS_REFRESH_SECONDS=0.5, ALERT_WEBHOOK_URLS=hook.url).start(STARTUP)
        db = server.env["PREDICTION_DB_URL"]
        old = server.health()["default_version"]
        scenario = churn_scenario(**SCENARIO)
        replay(server.url, headers(), scenario.replay)

        entry = wait_until(lambda: (e := _champion_entry(server))["status"] == "degraded" and e,
                           20, 0.5)
        assert entry, _champion_entry(server)
        assert entry["feedback"] == len(scenario.replay) and entry["failures"]
        assert wait_until(lambda: any(b["kind"] == "model_degraded" for b in hook.got), 20)
        time.sleep(2)  # more observer rounds in both workers: still one alert
        assert [b["kind"] for b in hook.got].count("model_degraded") == 1, hook.got

        state = str(tmp_path / "watch")
        first = _output(_watch(server, tracking.url, db, hook.url, state))
        assert "churn: wait: champion v" in first and "for 1/2 checks" in first, first
        watcher = _watch(server, tracking.url, db, hook.url, state)
        switch = follow(watcher, tracking.url, server.url, "churn", old)
        second = _output(watcher)
        assert "churn: retrain: " in second and "2/2 checks" in second, second
        assert "churn: retrain succeeded" in second, second
        _after_the_retrain(tracking.url, server, hook, scenario, old, db)
        # Last, so a slow switch on a loaded machine does not hide the checks above.
        assert len(switch.workers) == 2 and max(switch.workers.values()) < 5, switch
    finally:
        if server is not None:
            server.stop()
        tracking.stop()
        hook.stop()


def _after_the_retrain(tracking: str, server, hook, scenario, old: str, db: str) -> None:
    client = MlflowClient(tracking)
    new = str(client.get_registered_model("churn").aliases["champion"])
    assert new != old
    mv = client.get_model_version("churn", new)
    assert mv.tags["retrained_from"] == old and mv.tags["snapshot_digest"]
    pre = client.get_run(mv.tags["preprocess_run_id"])
    logs = [d.dataset for d in pre.inputs.dataset_inputs
            if d.dataset.source_type == "prediction_log"]
    assert logs and db in logs[0].source, [d.dataset for d in pre.inputs.dataset_inputs]
    run = client.search_runs([pre.info.experiment_id], "tags.`caretflow.step` = 'retrain'")[0]
    assert run.data.tags["retrain_outcome"] == "champion", run.data.tags
    assert run.data.tags["new_version"] == new and run.data.tags["retrained_from"] == old
    holdout = run.data.metrics  # the newest production labels, unseen by both
    assert holdout["retrain_after_roc_auc"] > holdout["retrain_before_roc_auc"], holdout
    assert wait_until(lambda: any(b["kind"] == "retrain_finished" for b in hook.got), 20), \
        hook.got

    fresh_from = time.time()
    replay(server.url, headers(), scenario.fresh, version_name=old)
    replay(server.url, headers(), scenario.fresh)
    hours = (time.time() - fresh_from + 5) / 3600
    body = requests.get(f"{server.url}/model_health", params={"window_hours": hours},
                        headers=headers(), timeout=10).json()
    live = {v["version"]: v for v in body["versions"]}
    assert live[old]["feedback"] == live[new]["feedback"] == len(scenario.fresh)
    assert live[new]["live_metrics"]["live_roc_auc"] > live[old]["live_metrics"]["live_roc_auc"]
