"""Observe and act end to end: real A/B traffic with true churn labels, the verdict,
auto-promotion, rollback, gauges, and a degraded champion alerted once through 2 workers
(one of which leads the observer; the other takes over when it dies)."""

from __future__ import annotations

import copy
import os
import re
import signal
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.tracking import MlflowClient
from sklearn.base import clone

from caretflow import registry
from caretflow.paths import ROOT
from tests.app_helpers import ADMIN, copy_registry, headers, running_app, start_gunicorn
from tests.test_app_alerts_delivery import Receiver

ROWS = pd.read_csv(ROOT / "data" / "Churn_Modelling.csv")


def _records(start: int, n: int, invert: bool = False) -> list[dict]:
    rows = ROWS.iloc[start:start + n]
    model_cols = [c for c in rows.columns if c not in ("RowNumber", "Surname", "Exited")]
    out = rows[model_cols].to_dict("records")
    for rec, truth in zip(out, rows["Exited"], strict=True):
        rec["true_value"] = int(1 - truth if invert else truth)
    return out


def _register_noise_model(uri: str) -> str:
    """A version of the same contract fitted on shuffled labels: ROC AUC about 0.5."""
    mlflow.set_tracking_uri(uri)  # load_model and logging below use the global store
    client = MlflowClient(uri)
    champion = client.get_model_version_by_alias("churn", "champion")
    model = registry.load_model(f"models:/churn/{champion.version}")
    features = model.contract["features"]
    X = ROWS[features].iloc[5000:7000]
    y = pd.Series(np.random.default_rng(0).permutation(ROWS["Exited"].iloc[5000:7000].to_numpy()))
    noise = copy.copy(model)
    noise.pipeline = clone(model.pipeline).fit(X, y.to_numpy())
    mlflow.set_experiment("noise-models")
    with mlflow.start_run():
        return registry.log_and_register(noise, X, "churn", "v_noise",
                                         tags={"version_name": "v_noise",
                                               "gate": "failed: shuffled labels"})


def _set(uri: str, **aliases) -> None:
    client = MlflowClient(uri)
    for alias, version in aliases.items():
        client.set_registered_model_alias("churn", alias, version)


def _traffic(client, records: list[dict], batch: int = 100) -> None:
    for i in range(0, len(records), batch):
        r = client.post("/predict", json={"records": records[i:i + batch],
                                          "enable_ab_testing": True}, headers=headers())
        assert r.status_code == 200, r.get_data(as_text=True)


def _wait(predicate, timeout: float = 20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


@pytest.mark.slow
def test_verdict_keeps_the_champion_then_auto_promotes_a_better_one_and_rolls_back(
        tiny_registry, tmp_path):
    uri = copy_registry(tiny_registry, tmp_path / "registry")
    good = str(MlflowClient(uri).get_model_version_by_alias("churn", "champion").version)
    noise = _register_noise_model(uri)
    _set(uri, champion=good, challenger=noise)
    with running_app(tiny_registry, tmp_path, MLFLOW_TRACKING_URI=uri, AB_WEIGHTS="50,50",
                     OBSERVE_SECONDS=0.3, AB_AUTO_PROMOTE=True) as app:
        client = app.test_client()
        _traffic(client, _records(0, 1200))
        body = client.get("/ab_test", headers=headers()).get_json()
        assert body["decision"] == "keep_champion", body
        assert body["metric"] == "roc_auc" and body["difference"]["ci_high"] < 0
        assert body["champion"]["version"] == good and body["challenger"]["version"] == noise
        assert min(body["champion"]["labels"], body["challenger"]["labels"]) > 400
        auc = body["champion"]["metrics"]["roc_auc"]
        assert auc["ci_low"] < auc["value"] < auc["ci_high"] and auc["value"] > 0.75
        metrics = _wait(lambda: (t := client.get("/metrics").get_data(as_text=True))
                        and 'caretflow_ab_decision{decision="keep_champion",model="churn"} 1.0'
                        in t and t)
        assert f'caretflow_labels{{arm="champion",model="churn",version="{good}"}}' in metrics
        assert 'metric="roc_auc"' in metrics and "caretflow_model_status" in metrics
        kinds = _wait(lambda: [a["kind"] for a in client.get(
            "/alerts", headers=headers()).get_json()["alerts"]])
        assert kinds.count("ab_verdict") == 1

    # The noise model as champion, the good one as challenger: the loop promotes it.
    uri2 = copy_registry(tiny_registry, tmp_path / "registry2")
    noise2 = _register_noise_model(uri2)
    _set(uri2, champion=noise2, challenger=good)
    assert MlflowClient(uri2).get_model_version("churn", good).tags["gate"] == "passed"
    (tmp_path / "b").mkdir()
    with running_app(tiny_registry, tmp_path / "b", MLFLOW_TRACKING_URI=uri2,
                     AB_WEIGHTS="50,50", OBSERVE_SECONDS=0.3, AB_AUTO_PROMOTE=True) as app:
        client = app.test_client()
        _traffic(client, _records(2000, 1200))
        reg = MlflowClient(uri2)
        _wait(lambda: str(reg.get_registered_model("churn").aliases.get("champion")) == good)
        aliases = reg.get_registered_model("churn").aliases
        assert str(aliases["previous"]) == noise2 and "challenger" not in aliases
        tags = reg.get_model_version("churn", good).tags
        assert tags["caretflow.promoted_by"] == "auto"
        assert "promote_challenger" in tags["caretflow.promotion_reason"]
        _wait(lambda: app.extensions["caretflow"].store.default.version == good, 5)
        r = client.post("/rollback", headers=headers(ADMIN))
        assert r.status_code == 200, r.get_data(as_text=True)
        assert r.get_json() == {"serving_alias": "champion", "version": noise2,
                                "rolled_back_from": good}
        assert str(reg.get_registered_model("churn").aliases["champion"]) == noise2
        assert client.post("/rollback", headers=headers(ADMIN)).status_code == 409
        assert client.post("/rollback", headers=headers()).status_code == 403
        kinds = [a["kind"] for a in client.get("/alerts", headers=headers()).get_json()[
            "alerts"]]
        assert kinds[:2] == ["rolled_back", "promoted"]


@pytest.mark.slow
def test_a_degraded_champion_is_alerted_once_through_two_workers(tiny_registry, tmp_path):
    uri = copy_registry(tiny_registry, tmp_path / "registry")
    hook = Receiver()
    hook.start()
    server = start_gunicorn(tmp_path, uri, workers=2, OBSERVE_SECONDS="0.5",
                            ALERT_WEBHOOK_URLS=hook.url)
    try:
        records = _records(0, 200, invert=True)  # the truth inverted: live ROC AUC far below
        r = requests.post(f"{server.url}/predict", json={"records": records},
                          headers=headers(), timeout=30)
        assert r.status_code == 200, r.text
        _wait(lambda: any(b["kind"] == "model_degraded" for b in hook.got), 30)
        time.sleep(3)  # several more rounds of both workers: still one
        degraded = [b for b in hook.got if b["kind"] == "model_degraded"]
        assert len(degraded) == 1, hook.got
        assert "degraded" in degraded[0]["text"] and degraded[0]["model_name"] == "churn"
        listed = requests.get(f"{server.url}/alerts", headers=headers(), timeout=5).json()
        assert [a["kind"] for a in listed["alerts"]].count("model_degraded") == 1
        text = requests.get(f"{server.url}/metrics", timeout=5).text
        assert 'caretflow_model_status{model="churn",status="degraded",version="' in text
        degraded_line = next(ln for ln in text.splitlines()
                             if ln.startswith('caretflow_model_status{model="churn",'
                                              'status="degraded"'))
        assert degraded_line.endswith(" 1.0")
        leader = _leaders(server)
        assert len(leader) == 1 and leader[0] in server.worker_pids(), server.log_tail()
        os.kill(leader[0], signal.SIGKILL)  # the lead passes on; the gauges come back
        _wait(lambda: len(_leaders(server)) == 2, 30)
        assert _leaders(server)[1] != leader[0]
        _wait(lambda: degraded_line in requests.get(f"{server.url}/metrics", timeout=5).text, 30)
        assert [b["kind"] for b in hook.got].count("model_degraded") == 1
    finally:
        server.stop()
        hook.stop()


def _leaders(server) -> list[int]:
    """The pids the server log names as leaders of the background work, in order."""
    found = re.findall(r"this worker \(pid (\d+)\) leads", server.log_path.read_text())
    return [int(pid) for pid in found]
