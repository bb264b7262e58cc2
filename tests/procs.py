"""Helpers for tests that start real processes (mlflow run, mlflow server)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import requests

from caretflow.launch import BIN, env_with, free_port, mlflow_run_main

__all__ = ["BIN", "MlflowServer", "env_with", "free_port", "mlflow_run_main"]


class MlflowServer:
    """A real `mlflow server` on loopback with a SQLite backend and local artifacts."""

    def __init__(self, workdir: Path, backend_uri: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backend = backend_uri or f"sqlite:///{workdir / 'server.db'}"
        self.artifacts = workdir / "server-artifacts"
        self.log = open(workdir / "server.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = None

    def start(self, timeout: float = 90) -> MlflowServer:
        self.proc = subprocess.Popen(
            [
                str(BIN / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--backend-store-uri",
                self.backend,
                "--artifacts-destination",
                str(self.artifacts),
                "--workers",
                "1",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env_with(self.backend),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.proc.returncode}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.5)
        raise TimeoutError("mlflow server did not become healthy")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
