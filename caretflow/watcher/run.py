"""One watcher check against a running server, and the ``retrain`` run it starts.

A check reads ``GET /health`` (which version serves by default), ``GET /model_health`` over
the server's health window (status and drift of that champion) and, once a retrain has
happened, ``GET /model_health`` over the time since it (the new labels). It logs one line,
``<model>: <action>: <reason>``, and persists the state unless it is a dry run.
"""

from __future__ import annotations

import logging
import subprocess
import time

import requests

from caretflow.config import resolve_path
from caretflow.launch import BIN, ROOT, env_with, stop_process
from caretflow.tracking import experiment_name
from caretflow.watcher.decision import (
    RETRAIN,
    WAIT,
    Check,
    Decision,
    Rules,
    WatchState,
    after_retrain,
    champion_check,
    decide,
    finished,
    labels_window_hours,
)
from caretflow.watcher.state import StateDir

log = logging.getLogger("caretflow.watch")


def retrain_command(model: str, params, prediction_db: str | None) -> list[str]:
    """``mlflow run . -e retrain`` for ``model`` with the ``watch.retrain`` parameters."""
    cmd = [str(BIN / "mlflow"), "run", str(ROOT), "-e", "retrain", "--env-manager", "local",
           "--experiment-name", experiment_name(model), "-P", f"dataset={model}",
           "-P", f"window_hours={float(params['window_hours'])}",
           "-P", f"policy={params['policy']}", "-P", f"overrides={params['overrides']}",
           "-P", f"force={str(params['force']).lower()}"]
    if prediction_db:
        cmd += ["-P", f"prediction_db={prediction_db}"]
    return cmd


class Server:
    """The caretflow server's client routes, read with one API key.

    Args:
        url: base URL.
        api_key: a client (or admin) key.
        timeout: seconds per request.
    """

    def __init__(self, url: str, api_key: str | None, timeout: float = 10.0):
        self.url, self.timeout = url.rstrip("/"), timeout
        self.headers = {"X-API-Key": api_key} if api_key else {}

    def get(self, path: str, **params) -> dict:
        """The JSON body of ``GET path``; raises for a non-2xx answer."""
        r = requests.get(self.url + path, params=params or None, headers=self.headers,
                         timeout=self.timeout)
        r.raise_for_status()
        return r.json()

    def check(self, state: WatchState, now: float) -> Check:
        """The champion as this poll sees it (labels counted since the last retrain)."""
        health = self.get("/health")
        report = self.get("/model_health")
        hours = labels_window_hours(state, now, report["window_hours"])
        labels = report if hours == report["window_hours"] else self.get(
            "/model_health", window_hours=hours)
        return champion_check(health, report, labels)


class Watcher:
    """Checks one registered model and starts ``retrain`` when the rules say so.

    Args:
        model: the registered model name (the server's ``MODEL_NAME``).
        watch: the ``watch`` config node.
        server: the server to poll.
        prediction_db: passed to ``retrain`` (None: its default, ``PREDICTION_DB_URL``).
        dry_run: log decisions only: no retrain, no state written.
    """

    def __init__(self, model: str, watch, server: Server, prediction_db: str | None = None,
                 dry_run: bool = False):
        self.model, self.watch, self.server = model, watch, server
        self.prediction_db, self.dry_run = prediction_db, dry_run
        self.rules = Rules.from_config(watch)
        self.dir = StateDir(resolve_path(watch["state_dir"]), model)
        self._memory: WatchState | None = None  # dry runs keep their state here

    def check_once(self) -> Decision:
        """One check: decide, log the decision, and run the retrain it asks for."""
        now = time.time()
        with self.dir.checking():
            state = self._memory or self.dir.load()
            try:
                check = self.server.check(state, now)
            except (requests.RequestException, ValueError, KeyError) as exc:
                decision = Decision(WAIT, f"server unreachable or unreadable ({exc})", state)
                log.warning("%s: %s: %s", self.model, decision.action, decision.reason)
                return decision
            decision = decide(check, state, self.rules, now, self.dir.retrain_running())
            log.info("%s: %s%s: %s", self.model, decision.action,
                     " (dry run)" if self.dry_run else "", decision.reason)
            if self.dry_run:
                self._memory = decision.state
                return decision
            fd = self.dir.try_lock_retrain() if decision.action == RETRAIN else None
            if decision.action == RETRAIN and fd is None:  # another process won the race
                decision = Decision(WAIT, "a retrain started meanwhile", decision.state)
                log.info("%s: %s: %s", self.model, decision.action, decision.reason)
            if fd is None:
                self.dir.save(decision.state)
                return decision
            self.dir.save(after_retrain(decision.state, check.champion, now, "running"))
        try:
            outcome = self._retrain(fd)
        finally:
            with self.dir.checking():
                self.dir.save(finished(self.dir.load(), outcome))
            StateDir.unlock(fd)
        log.info("%s: retrain %s", self.model, outcome)
        return decision

    def _retrain(self, lock_fd: int) -> str:
        """Run ``retrain`` in the foreground (it inherits the lock); its outcome in words."""
        params = self.watch["retrain"]
        env = env_with()
        logfile = self.dir.root / f"{self.model}.retrain-{time.strftime('%Y%m%dT%H%M%S')}.log"
        with open(logfile, "ab") as out:
            subprocess.run([str(BIN / "python"), "-m", "caretflow.tracking", "ensure-experiment",
                            self.model], cwd=ROOT, env=env, stdout=out,
                           stderr=subprocess.STDOUT, check=False)
            cmd = retrain_command(self.model, params, self.prediction_db)
            log.info("%s: starting mlflow %s (log %s)", self.model,
                     " ".join(cmd[1:2] + cmd[3:]), logfile)
            started = time.monotonic()
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    pass_fds=(lock_fd,), start_new_session=True)
            try:
                code = proc.wait(float(params["timeout_minutes"]) * 60)
            except subprocess.TimeoutExpired:
                stop_process(proc, group=True)
                return f"timed out after {params['timeout_minutes']} min (log {logfile})"
        took = time.monotonic() - started
        if code == 0:
            return f"succeeded in {took:.0f} s (log {logfile})"
        return f"failed with exit code {code} after {took:.0f} s (log {logfile})"

    def run(self, once: bool) -> Decision:
        """Check once, or forever every ``watch.interval_seconds``; the last decision."""
        while True:
            decision = self.check_once()
            if once:
                return decision
            time.sleep(float(self.watch["interval_seconds"]))

