"""The retrain watcher: decision rules, persisted state, the cross-process lock, one check."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from omegaconf import OmegaConf

from caretflow.config import compose
from caretflow.launch import ROOT, env_with, wait_until
from caretflow.watcher.decision import (
    RETRAIN,
    WAIT,
    Check,
    Rules,
    WatchState,
    after_retrain,
    champion_check,
    decide,
    labels_window_hours,
)
from caretflow.watcher.run import Watcher, retrain_command
from caretflow.watcher.state import StateDir

RULES = Rules(consecutive=2, min_new_labels=100, cooldown_minutes=30, on_drift=True)
NOW = 1_800_000_000.0


def _check(status="degraded", drift="ok", labels=500, champion="3"):
    return Check(champion, status, drift, labels, ("live_roc_auc 0.62 < 0.8",))


def _twice(check, state=None, **kw):
    first = decide(check, state or WatchState(), RULES, NOW, **kw)
    return first, decide(check, first.state, RULES, NOW + 60, **kw)


def test_a_degraded_champion_retrains_after_the_consecutive_checks():
    first, second = _twice(_check())
    assert first.action == WAIT and "1/2 checks" in first.reason
    assert second.action == RETRAIN and "2/2" in second.reason and "500 new labels" in second.reason
    assert "live_roc_auc 0.62 < 0.8" in second.reason


def test_a_healthy_check_or_another_champion_restarts_the_count():
    first = decide(_check(), WatchState(), RULES, NOW)
    healthy = decide(_check("healthy"), first.state, RULES, NOW)
    assert healthy.action == WAIT and healthy.state.streak == 0
    assert "nothing to do" in healthy.reason
    other = decide(_check(champion="4"), first.state, RULES, NOW)
    assert other.action == WAIT and other.state.streak == 1


@pytest.mark.parametrize(("on_drift", "action"), [(True, RETRAIN), (False, WAIT)])
def test_input_drift_counts_only_when_configured(on_drift, action):
    rules = Rules(consecutive=1, min_new_labels=0, cooldown_minutes=0, on_drift=on_drift)
    decision = decide(_check("healthy", drift="drift"), WatchState(), rules, NOW)
    assert decision.action == action
    assert ("drifting" in decision.reason) is on_drift


def test_no_retrain_while_one_runs_in_cool_down_or_without_labels():
    _, running = _twice(_check(), running=True)
    assert running.action == WAIT and "already running" in running.reason
    recent = after_retrain(WatchState(), "3", NOW - 600, "succeeded")
    _, cooling = _twice(_check(), recent)
    assert cooling.action == WAIT and "cool-down (19.0 min left)" in cooling.reason
    old = after_retrain(WatchState(), "3", NOW - 3600, "succeeded")
    assert _twice(_check(), old)[1].action == RETRAIN
    _, few = _twice(_check(labels=99))
    assert few.action == WAIT and "only 99 new labels (need 100)" in few.reason


def test_insufficient_data_or_no_champion_never_retrains():
    assert _twice(_check("insufficient_data"))[1].action == WAIT
    nothing = decide(_check(champion=None), WatchState(streak=5), RULES, NOW)
    assert nothing.action == WAIT and nothing.state.streak == 0


def test_champion_check_reads_the_server_bodies():
    report = {"window_hours": 24, "versions": [
        {"version": "2", "status": "healthy", "feedback": 40, "drift": {"status": "ok"}},
        {"version": "3", "status": "degraded", "feedback": 300, "failures": ["f1 0.3 < 0.55"],
         "drift": {"status": "warn"}}]}
    since = {"versions": [{"version": "3", "feedback": 120}]}
    check = champion_check({"default_version": "3"}, report, since)
    assert check == Check("3", "degraded", "warn", 120, ("f1 0.3 < 0.55",))
    assert champion_check({"default_version": "3"}, report).new_labels == 340
    assert champion_check({"default_version": "9"}, report).status == "absent"


def test_labels_are_counted_since_the_last_retrain():
    assert labels_window_hours(WatchState(), NOW, 24) == 24
    state = after_retrain(WatchState(), "3", NOW - 7200, "succeeded")
    assert labels_window_hours(state, NOW, 24) == pytest.approx(2.0)
    assert labels_window_hours(state, NOW + 1e9, 24) == 8760


def test_state_round_trips_and_the_lock_holds_across_processes(tmp_path):
    states = StateDir(tmp_path, "churn")
    saved = after_retrain(WatchState(streak=1), "3", NOW, "succeeded in 40 s")
    states.save(saved)
    assert StateDir(tmp_path, "churn").load() == saved
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from caretflow.watcher.state import StateDir;"
         "fd = StateDir(sys.argv[1], 'churn').try_lock_retrain(); print(fd, flush=True);"
         "time.sleep(30)", str(tmp_path)], cwd=ROOT, env=env_with(), stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout.readline().strip() != "None"
        assert states.retrain_running() and states.try_lock_retrain() is None
    finally:
        holder.kill()
        holder.wait()
    assert wait_until(lambda: not states.retrain_running(), 5)


class FakeServer:
    def __init__(self, *checks):
        self.checks = list(checks)

    def check(self, state, now):
        return self.checks.pop(0)


@pytest.fixture(scope="module")
def watch_group():
    """The real ``watch`` group, composed once for the module."""
    return compose(["+watch=default", "watch.consecutive=2", "watch.min_new_labels=100"]).watch


def _watcher(group, tmp_path, server, dry_run=False, ran=None):
    watch = OmegaConf.merge(group, {"state_dir": str(tmp_path)})
    watcher = Watcher("churn", watch, server, dry_run=dry_run)
    if ran is not None:
        def fake_retrain(fd):  # the real one runs mlflow (the end-to-end test)
            ran.append(watcher.dir.retrain_running())
            return "succeeded in 1 s"
        watcher._retrain = fake_retrain
    return watcher


def test_one_check_per_run_persists_the_streak_and_runs_one_retrain_under_the_lock(
        watch_group, tmp_path, caplog):
    caplog.set_level("INFO", "caretflow.watch")
    ran: list[bool] = []
    first = _watcher(watch_group, tmp_path, FakeServer(_check()), ran=ran).run(once=True)
    assert first.action == WAIT
    decision = _watcher(watch_group, tmp_path, FakeServer(_check()), ran=ran).run(once=True)
    assert decision.action == RETRAIN and ran == [True]
    state = StateDir(tmp_path, "churn").load()
    assert state.last_outcome == "succeeded in 1 s" and state.streak == 0
    assert [h["outcome"] for h in state.history] == ["succeeded in 1 s"]
    assert time.time() - state.last_retrain_at < 60 and state.last_retrain_champion == "3"
    again = _watcher(watch_group, tmp_path, FakeServer(_check(), _check()), ran=ran)
    assert [again.check_once().action for _ in range(2)] == [WAIT, WAIT] and ran == [True]
    lines = [r.getMessage() for r in caplog.records if r.name == "caretflow.watch"]
    assert sum(m.startswith(("churn: wait", "churn: retrain:")) for m in lines) == 4
    assert "cool-down" in lines[-1]


def test_a_dry_run_decides_but_neither_retrains_nor_writes_state(watch_group, tmp_path):
    ran: list[bool] = []
    watcher = _watcher(watch_group, tmp_path, FakeServer(_check(), _check()), dry_run=True, ran=ran)
    assert [watcher.check_once().action for _ in range(2)] == [WAIT, RETRAIN]
    assert ran == [] and not (tmp_path / "churn.json").exists()


def test_the_retrain_command_follows_the_entry_point_contract():
    params = {"window_hours": 48, "policy": "window", "overrides": "profile=quick a=b",
              "force": False}
    cmd = retrain_command("churn", params, "sqlite:///p.db")
    assert cmd[1:7] == ["run", str(ROOT), "-e", "retrain", "--env-manager", "local"]
    assert cmd[cmd.index("--experiment-name") + 1] == "caretflow-churn"
    given = [cmd[i + 1] for i, c in enumerate(cmd) if c == "-P"]
    assert given == ["dataset=churn", "window_hours=48.0", "policy=window",
                     "overrides=profile=quick a=b", "force=false", "prediction_db=sqlite:///p.db"]
