"""Start and stop the two servers under test on loopback ports: caretflow and mlflow serve."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

from caretflow.launch import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCH_KEY = "bench-client-key"


@dataclass
class Server:
    """A running server process, its base URL, prediction path and log file."""

    name: str
    proc: subprocess.Popen
    base: str
    predict_path: str
    log: Path

    @property
    def url(self) -> str:
        """The prediction URL."""
        return self.base + self.predict_path

    def stop(self) -> None:
        """Terminate (then kill) the process."""
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)




def _env(tracking_uri: str, **extra: str) -> dict:
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PYTHONPATH": str(ROOT),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}
    env.pop("MLFLOW_RUN_ID", None)
    return env


def _wait(server: Server, health: str, timeout: float) -> Server:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.base + health, timeout=2) as resp:
                if resp.status == 200:
                    return server
        except (URLError, OSError):
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"{server.name} not healthy after {timeout}s:\n"
                       f"{server.log.read_text()[-3000:]}")


def _spawn(name: str, cmd: list[str], env: dict, workdir: Path) -> tuple[subprocess.Popen, Path]:
    log = workdir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, log


def start_caretflow(tracking_uri: str, workdir: Path, workers: int = 2,
                    prediction_log: bool = True, timeout: float = 120) -> Server:
    """Caretflow under gunicorn, serving ``churn@champion`` from ``tracking_uri``.

    Args:
        tracking_uri: the registry store.
        workdir: holds the prediction database, metrics directory and log.
        workers: gunicorn workers.
        prediction_log: the ``PREDICTION_LOG`` setting (prediction log and feedback path).
        timeout: seconds to wait for ``/health``.
    """
    name = f"caretflow-log-{'on' if prediction_log else 'off'}"
    port, prom = free_port(), workdir / f"{name}-prom"
    prom.mkdir(parents=True, exist_ok=True)
    env = _env(tracking_uri, MODEL_NAME="churn", SERVING_ALIAS="champion", PORT=str(port),
               WORKERS=str(workers), API_KEYS=BENCH_KEY,
               PREDICTION_DB_URL=f"sqlite:///{workdir / name}.db",
               PREDICTION_LOG="1" if prediction_log else "0",
               PROMETHEUS_MULTIPROC_DIR=str(prom))
    proc, log = _spawn(name, [str(BIN / "gunicorn"), "-c", "app/gunicorn.conf.py",
                              "app:create_app()"], env, workdir)
    server = Server(name, proc, f"http://127.0.0.1:{port}", "/predict", log)
    return _wait(server, "/health", timeout)


def start_mlflow(tracking_uri: str, workdir: Path, workers: int = 2,
                 timeout: float = 180) -> Server:
    """``mlflow models serve -m models:/churn@champion --env-manager local -w <workers>``."""
    port = free_port()
    env = _env(tracking_uri, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true")
    cmd = [str(BIN / "mlflow"), "models", "serve", "-m", "models:/churn@champion",
           "--env-manager", "local", "-w", str(workers), "-h", "127.0.0.1", "-p", str(port)]
    proc, log = _spawn("mlflow-serve", cmd, env, workdir)
    server = Server("mlflow-serve", proc, f"http://127.0.0.1:{port}", "/invocations", log)
    return _wait(server, "/ping", timeout)
