"""A real Dask cluster on loopback: `dask scheduler` and `dask worker` processes."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from caretflow.config import ROOT
from caretflow.launch import BIN, free_port


class DaskCluster:
    """One scheduler and ``workers`` single-threaded workers, started as subprocesses."""

    def __init__(self, workdir: Path, workers: int = 2):
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.workdir, self.n_workers = workdir, workers
        self.scheduler = None
        self.workers: list[subprocess.Popen] = []
        self._logs = []

    def _start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return subprocess.Popen([str(BIN / "dask"), *args], stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def start_worker(self, name: str) -> subprocess.Popen:
        proc = self._start(name, "worker", self.address, "--nthreads", "1", "--nworkers", "1",
                           "--no-dashboard", "--local-directory", str(self.workdir / name))
        self.workers.append(proc)
        return proc

    def start(self, timeout: float = 60) -> DaskCluster:
        self.scheduler = self._start("scheduler", "scheduler", "--host", "127.0.0.1",
                                     "--port", str(self.port), "--no-dashboard")
        for i in range(self.n_workers):
            self.start_worker(f"worker{i}")
        self.wait_for_workers(self.n_workers, timeout)
        return self

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited: {self.scheduler.returncode}")
            try:
                with Client(self.address, timeout="2s") as client:
                    client.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
                    return
            except (OSError, TimeoutError):
                time.sleep(0.5)
        raise TimeoutError(f"dask cluster at {self.address} did not get {n} workers")

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers, self.scheduler]:
            if proc is None:
                continue
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in self._logs:
            log.close()
