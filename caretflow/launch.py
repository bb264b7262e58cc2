"""Start and stop the project's processes on loopback: gunicorn, ``mlflow server``, ``mlflow run``.

The one place tests and benchmarks launch real processes from. Every server listens on a
loopback port that it keeps across restarts, logs into its work directory and is stopped by
its own process id (or its own process group).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from caretflow.paths import ROOT

BIN = Path(sys.executable).parent

__all__ = ["BIN", "ROOT", "Gunicorn", "MlflowServer", "ServerProcess", "copy_sqlite_store",
           "env_with", "free_port", "stop_process", "wait_until"]


def env_with(tracking_uri: str | None = None, **extra) -> dict:
    """Copy of the environment for a child process.

    This interpreter comes first on PATH, the repo is on PYTHONPATH, ``MLFLOW_TRACKING_URI`` is
    set when given and ``extra`` is added (values made strings).
    """
    env = dict(os.environ)
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(ROOT))
    if tracking_uri is not None:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    env.update({key: str(value) for key, value in extra.items()})
    # A run or experiment chosen by an enclosing process must not leak into this one.
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(var, None)
    return env


def copy_sqlite_store(src_uri: str, dest: Path) -> str:
    """A private copy of a SQLite tracking store for a server to change (artifacts are shared)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src_uri.removeprefix("sqlite:///"), dest / "mlflow.db")
    return f"sqlite:///{dest / 'mlflow.db'}"


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


def stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM,
                 timeout: float = 20.0, group: bool = False) -> None:
    """Send ``sig`` to ``proc`` (to its process group when ``group``), wait, then kill."""
    if proc is None or proc.poll() is not None:
        return

    def send(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, signum)
            else:
                proc.send_signal(signum)

    send(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(5)


class ServerProcess:
    """One HTTP server process on a loopback port, restartable, its output in a log file.

    Args:
        name: log file stem and the name in error messages.
        command: the command line.
        workdir: directory for the log (created).
        env: the process environment (see ``env_with``).
        port: the port ``command`` listens on (default: a free one, for subclasses).
        health_path: the route answering 200 once the server is ready.
        group: start the process in its own session and stop the whole group (servers whose
            children can outlive their master).
        cwd: the working directory (default: the repo).
    """

    def __init__(self, name: str, command: list[str], workdir: Path, env: dict,
                 port: int | None = None, health_path: str = "/health", group: bool = False,
                 cwd: Path = ROOT):
        self.name, self.command, self.env, self.cwd = name, command, env, cwd
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.health_path, self.group = health_path, group
        self.log_path = self.workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float | None = 120) -> ServerProcess:
        """Start and wait until the health route answers 200.

        Args:
            timeout: seconds to wait; None waits (up to 120 s) only until it answers at all,
                for a server expected to start not ready.

        Raises:
            RuntimeError: the process exited or was not ready in time (it is stopped).
        """
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=self.group)
        ready = (lambda code: code is not None) if timeout is None else (lambda code: code == 200)
        up = wait_until(lambda: ready(self.status()) or self.proc.poll() is not None,
                        timeout or 120, 0.3)
        if not up or self.proc.poll() is not None:
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(f"{self.name} on {self.url} did not become ready:\n{tail}")
        return self

    def status(self) -> int | None:
        """HTTP status of the health route, None when nothing answers."""
        try:
            return requests.get(self.url + self.health_path, timeout=3).status_code
        except requests.RequestException:
            return None

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the log file."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """Graceful stop, then kill; for a group, also wait until the port stops answering."""
        if self.proc is None:
            return
        answered = self.group and self.proc.poll() is None
        stop_process(self.proc, group=self.group)
        if answered and not wait_until(lambda: self.status() is None, 20, 0.2):
            with contextlib.suppress(ProcessLookupError):  # a child that lingers
                os.killpg(self.proc.pid, signal.SIGKILL)
            wait_until(lambda: self.status() is None, 10, 0.2)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Gunicorn(ServerProcess):
    """The caretflow server: ``gunicorn -c app/gunicorn.conf.py 'app:create_app()'``.

    Args:
        workdir: directory for the log, the Prometheus files and the default prediction DB.
        tracking_uri: registry the instance serves from.
        prediction_db: ``PREDICTION_DB_URL`` (default: a SQLite file in ``workdir``).
        workers: gunicorn workers.
        name: log file stem (several instances may share ``workdir``).
        **settings: further environment settings (``API_KEYS``, ``RATE_LIMIT`` ...).
    """

    def __init__(self, workdir: Path, tracking_uri: str, prediction_db: str | None = None,
                 workers: int = 2, name: str = "gunicorn", **settings):
        workdir, port = Path(workdir), free_port()
        prom = workdir / f"{name}-prom"
        prom.mkdir(parents=True, exist_ok=True)
        env = env_with(tracking_uri, PORT=port, WORKERS=workers, PROMETHEUS_MULTIPROC_DIR=prom,
                       PREDICTION_DB_URL=prediction_db or f"sqlite:///{workdir / name}.db",
                       **settings)
        command = [str(BIN / "gunicorn"), "-c", "app/gunicorn.conf.py", "app:create_app()"]
        super().__init__(name, command, workdir, env, port)

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


class MlflowServer(ServerProcess):
    """A real ``mlflow server``: SQLite backend by default, artifacts in ``workdir``.

    Args:
        workdir: directory for the log, the default backend and ``server-artifacts``.
        backend_uri: backend store URI (e.g. a PostgreSQL database).
    """

    def __init__(self, workdir: Path, backend_uri: str | None = None):
        workdir, port = Path(workdir), free_port()
        self.backend = backend_uri or f"sqlite:///{workdir / 'server.db'}"
        command = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                   "--backend-store-uri", self.backend, "--workers", "1",
                   "--artifacts-destination", str(workdir / "server-artifacts")]
        super().__init__("server", command, workdir, env_with(self.backend), port, group=True)
