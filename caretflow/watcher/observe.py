"""Run the watcher as a real process and time, from outside, what its retrain changes.

Used by the end-to-end retraining test and ``bench/retrain_scenario.py``: start
``python -m steps.watch --once``; while it runs, poll the registry for the ``@champion`` move
and then every worker's ``/health`` until all serve the new version.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field

import requests
from mlflow.tracking import MlflowClient

from caretflow.launch import BIN, ROOT, env_with


def watch_process(model: str, server_url: str, tracking_uri: str, state_dir: str,
                  overrides: list[str], **env) -> subprocess.Popen:
    """``python -m steps.watch --model <model> --once`` started (output in ``.stdout``).

    Args:
        model: the registered model name.
        server_url: the server it polls.
        tracking_uri: ``MLFLOW_TRACKING_URI`` of the watcher and its retrain.
        state_dir: ``watch.state_dir``.
        overrides: further Hydra overrides of the ``watch`` group.
        **env: environment settings (``API_KEYS``, ``ALERT_WEBHOOK_URLS`` ...).
    """
    cmd = [str(BIN / "python"), "-m", "steps.watch", "--model", model, "--once",
           "--url", server_url, f"watch.state_dir={state_dir}", *overrides]
    return subprocess.Popen(cmd, cwd=ROOT, env=env_with(tracking_uri, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@dataclass
class Switch:
    """When the alias moved (epoch seconds, None if never) and each worker's delay after it."""

    moved_at: float | None = None
    new_version: str | None = None
    workers: dict = field(default_factory=dict)


def follow(proc: subprocess.Popen, tracking_uri: str, server_url: str, model: str,
           old: str, workers: int = 2, settle: float = 10.0, alias: str = "champion") -> Switch:
    """Time the alias move and each worker's switch while ``proc`` runs.

    Polls until ``proc`` exits and, once the alias moved, until each of ``workers`` gunicorn
    workers answered ``/health`` with the new version (at most ``settle`` s after the move).
    """
    client, out = MlflowClient(tracking_uri), Switch()
    while proc.poll() is None or (out.moved_at is not None and len(out.workers) < workers
                                  and time.time() - out.moved_at < settle):
        if out.moved_at is None:
            current = client.get_registered_model(model).aliases.get(alias)
            if current is not None and str(current) != old:
                out.moved_at, out.new_version = time.time(), str(current)
            else:
                time.sleep(0.3)
            continue
        body = requests.get(f"{server_url}/health", timeout=5).json()
        if str(body.get("default_version")) == out.new_version:
            out.workers.setdefault(body["worker_pid"], time.time() - out.moved_at)
        time.sleep(0.2)
    return out
