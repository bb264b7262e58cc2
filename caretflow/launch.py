"""Launch the ``main`` entry point through the real ``mlflow run`` CLI (tests, benchmarks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from caretflow.config import ROOT

BIN = Path(sys.executable).parent


def env_with(tracking_uri: str, **extra: str) -> dict:
    """Copy of the environment pointed at ``tracking_uri``, this interpreter first on PATH."""
    env = dict(os.environ)
    env.update(MLFLOW_TRACKING_URI=tracking_uri, PATH=f"{BIN}{os.pathsep}{env['PATH']}", **extra)
    # A run or experiment chosen by an enclosing process must not leak into this one.
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(var, None)
    return env


def mlflow_run_main(tracking_uri: str, dataset: str = "churn", overrides: str = "", **params):
    """Run ``mlflow run . -e main``; return (completed process, wall seconds)."""
    subprocess.run(
        [str(BIN / "python"), "-m", "caretflow.tracking", "ensure-experiment", dataset],
        cwd=ROOT,
        env=env_with(tracking_uri),
        check=True,
        capture_output=True,
    )
    cmd = [
        str(BIN / "mlflow"),
        "run",
        ".",
        "-e",
        "main",
        "--env-manager",
        "local",
        "--experiment-name",
        f"caretflow-{dataset}",
        "-P",
        f"dataset={dataset}",
        "-P",
        f"overrides={overrides}",
    ]
    for key, value in params.items():
        cmd += ["-P", f"{key}={value}"]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env_with(tracking_uri), capture_output=True, text=True, timeout=3600
    )
    return proc, time.perf_counter() - start


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, every: float = 0.1):
    """Poll ``predicate`` until truthy (returned) or ``timeout`` seconds (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return None
