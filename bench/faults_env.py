"""Processes for the load and fault scripts: gunicorn with their client and admin keys.

The processes themselves (gunicorn, a restartable ``mlflow server``) are ``caretflow.launch``'s:
everything on loopback, every process stoppable by id.
"""

from __future__ import annotations

from pathlib import Path

from caretflow import launch

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

