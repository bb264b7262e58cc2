"""Processes for the load and fault scripts: gunicorn with their keys, a published registry.

The processes themselves (gunicorn, a restartable ``mlflow server``) are ``caretflow.launch``'s:
everything on loopback, every process stoppable by id.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.faults_publish import publish as publish_registry
from caretflow import launch

log = logging.getLogger("bench.faults_env")
CLIENT_KEY, ADMIN_KEY = "faults-client-key", "faults-admin-key"


class Gunicorn(launch.Gunicorn):
    """One server instance answering the fault scripts' client and admin keys.

    Args:
        workdir: directory for the log and the Prometheus files.
        tracking_uri: registry the instance serves from.
        prediction_db: ``PREDICTION_DB_URL``.
        workers: gunicorn workers.
        **env: further settings (``RATE_LIMIT``, ``ALIAS_REFRESH_SECONDS``, ``API_KEYS`` ...).
    """

    def __init__(self, workdir: Path, tracking_uri: str, prediction_db: str, workers: int = 2,
                 **env):
        keys = {"API_KEYS": CLIENT_KEY, "ADMIN_API_KEYS": ADMIN_KEY}
        super().__init__(workdir, tracking_uri, prediction_db, workers, **{**keys, **env})
        self.workers = workers

    def worker_healths(self, calls_per_worker: int = 6) -> dict[int, dict]:
        """The /health body of each worker that answered ``calls_per_worker * workers`` calls.

        The calls run ``2 * workers`` at a time: one client calling in turn may keep meeting
        the same idle worker (each closes its connection at once, ``app.worker``), while
        concurrent calls find every worker. Fewer entries than ``workers`` means some worker
        was not reached, not up, or too busy to answer in time (loading a model).
        """
        with ThreadPoolExecutor(2 * self.workers) as pool:
            bodies = list(pool.map(self._health_or_none, range(calls_per_worker * self.workers)))
        return {body["worker_pid"]: body for body in bodies if body is not None}

    def _health_or_none(self, _call: int) -> dict | None:
        try:
            return self.health()
        except requests.RequestException:
            return None

    def every_worker(self, check) -> bool:
        """True when every worker was reached and ``check(health body)`` holds for each."""
        seen = self.worker_healths()
        return len(seen) == self.workers and all(check(body) for body in seen.values())

    def all_ready(self) -> bool:
        """Every worker was reached and serves a model."""
        return self.every_worker(lambda body: body["ready"])


def sqlite_db(workdir: Path) -> str:
    """A SQLite ``PREDICTION_DB_URL`` in ``workdir``."""
    return f"sqlite:///{workdir / 'predictions.db'}"


@contextlib.contextmanager
def published(registry_uri: str, workdir: Path, backend_uri: str | None = None):
    """A running ``mlflow server`` holding a copy of the registry at ``registry_uri``.

    Args:
        registry_uri: the store to copy (versions, artifacts, test metrics, tags, aliases).
        workdir: directory for the server's log, default backend and artifacts.
        backend_uri: the server's backend store (e.g. a fresh PostgreSQL database).

    Yields:
        The ``caretflow.launch.MlflowServer``; stopped afterwards.
    """
    tracking = launch.MlflowServer(workdir / "mlflow", backend_uri).start()
    try:
        publish_registry(registry_uri, tracking.url)
        log.info("registry published to %s", tracking.url)
        yield tracking
    finally:
        tracking.stop()
