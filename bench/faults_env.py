"""Processes for the load and fault scripts: gunicorn, a restartable ``mlflow server``.

Everything on loopback, every process stoppable by id.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import requests

from caretflow.launch import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLIENT_KEY, ADMIN_KEY = "faults-client-key", "faults-admin-key"
log = logging.getLogger("bench.faults_env")






def child_env(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MLFLOW_RUN_ID", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _stop(proc: subprocess.Popen | None, sig=signal.SIGTERM, timeout: float = 20) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Gunicorn:
    """One server instance: ``gunicorn -c app/gunicorn.conf.py 'app:create_app()'``.

    Args:
        workdir: directory for the log and the Prometheus files.
        tracking_uri: registry the instance serves from.
        prediction_db: ``PREDICTION_DB_URL``.
        workers: gunicorn workers.
        **env: further settings (``RATE_LIMIT``, ``ALIAS_REFRESH_SECONDS`` ...).
    """

    def __init__(self, workdir: Path, tracking_uri: str, prediction_db: str, workers: int = 2,
                 **env):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = {"MLFLOW_TRACKING_URI": tracking_uri, "PREDICTION_DB_URL": prediction_db,
                    "PORT": self.port, "WORKERS": workers, "API_KEYS": CLIENT_KEY,
                    "ADMIN_API_KEYS": ADMIN_KEY, "PROMETHEUS_MULTIPROC_DIR": self.workdir / "prom"}
        self.env = child_env(**{**settings, **env})
        self.log_path = self.workdir / "gunicorn.log"
        self.proc: subprocess.Popen | None = None

    def start(self, ready_timeout: float | None = 120) -> Gunicorn:
        """Start; wait until /health answers 200 (or only until it answers, when None)."""
        (self.workdir / "prom").mkdir(exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "gunicorn"), "-c", "app/gunicorn.conf.py", "app:create_app()"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        want = (200,) if ready_timeout is not None else (200, 503)
        if not wait_until(lambda: self._health() in want or self.proc.poll() is not None,
                          ready_timeout or 120) or self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"gunicorn on {self.url} did not start:\n{tail}")
        return self

    def _health(self) -> int | None:
        try:
            return requests.get(f"{self.url}/health", timeout=3).status_code
        except requests.RequestException:
            return None

    def health(self) -> dict:
        """The /health body of whichever worker answers."""
        return requests.get(f"{self.url}/health", timeout=5).json()

    def worker_pids(self) -> list[int]:
        """Current worker process ids (children of the gunicorn master)."""
        import psutil

        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        """Graceful stop of the master (workers follow)."""
        _stop(self.proc)


class TrackingServer:
    """A real ``mlflow server`` on a fixed port that can be stopped and started again.

    Args:
        workdir: directory for the log and the artifact store.
        backend_uri: backend store (SQLite file by default, or PostgreSQL).
    """

    def __init__(self, workdir: Path, backend_uri: str | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backend = backend_uri or f"sqlite:///{self.workdir / 'server.db'}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> TrackingServer:
        """Start and wait for /health."""
        with open(self.workdir / "server.log", "ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--backend-store-uri", self.backend, "--workers", "1",
                 "--artifacts-destination", str(self.workdir / "artifacts")],
                cwd=self.workdir, env=child_env(), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({self.proc.returncode}); see "
                                   f"{self.workdir / 'server.log'}")
            try:
                return requests.get(f"{self.url}/health", timeout=1).ok
            except requests.RequestException:
                return False

        if not wait_until(up, timeout, 0.5):
            self.stop()
            raise TimeoutError("mlflow server did not become healthy")
        return self

    def stop(self) -> None:
        """Stop the server and its worker processes (its process group); wait for the port."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(20)
        if not wait_until(lambda: not self._answers(), 20, 0.2):  # uvicorn child lingers
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            wait_until(lambda: not self._answers(), 10, 0.2)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def _answers(self) -> bool:
        try:
            requests.get(f"{self.url}/health", timeout=1)
            return True
        except requests.RequestException:
            return False


def copy_sqlite_store(src_uri: str, dest: Path) -> str:
    """A private copy of a SQLite tracking store (artifacts stay where they are)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src_uri.removeprefix("sqlite:///"), dest / "mlflow.db")
    return f"sqlite:///{dest / 'mlflow.db'}"
