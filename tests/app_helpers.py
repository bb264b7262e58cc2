"""Helpers for the serving tests: keys, records, app config, a private registry copy.

The fixtures built on them (``shared_app``, ``client``, ``fresh_app``) are in conftest.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from caretflow.launch import Gunicorn, copy_sqlite_store

CLIENT, ADMIN = "client-key-for-tests", "admin-key-for-tests"
RECORD = {"CreditScore": 619, "Geography": "France", "Gender": "Female", "Age": 42, "Tenure": 2,
          "Balance": 0.0, "NumOfProducts": 1, "HasCrCard": 1, "IsActiveMember": 1,
          "EstimatedSalary": 101348.88}


def headers(key: str = CLIENT) -> dict:
    return {"X-API-Key": key}


def copy_registry(registry: dict, dest: Path) -> str:
    """A private copy of the session registry's store (artifacts are shared read-only)."""
    return copy_sqlite_store(registry["uri"], dest)


def ensure_challenger(uri: str) -> None:
    """Tests need both arms: point ``challenger`` at the non-champion version if it is unset."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    aliases = client.get_registered_model("churn").aliases
    if "challenger" not in aliases:
        other = next(v for a, v in aliases.items() if str(v) != str(aliases["champion"]))
        client.set_registered_model_alias("churn", "challenger", str(other))


def app_config(tmp: Path, **overrides) -> dict:
    """Settings for an in-process app: fast background loops, a private prediction DB."""
    cfg = {"API_KEYS": CLIENT, "ADMIN_API_KEYS": ADMIN,
           "PREDICTION_DB_URL": f"sqlite:///{tmp / 'predictions.db'}",
           "ALIAS_REFRESH_SECONDS": 0.5, "LIVE_METRICS_SECONDS": 0.2}
    cfg.update(overrides)
    return cfg


def start_gunicorn(tmp: Path, tracking_uri: str, workers: int = 2, **env) -> Gunicorn:
    """Gunicorn with the test keys on a free loopback port, started and healthy."""
    return Gunicorn(tmp, tracking_uri, workers=workers, API_KEYS=CLIENT, ADMIN_API_KEYS=ADMIN,
                    **env).start(90)


class running_app:  # noqa: N801 - used as a context manager
    """An in-process app over a private registry copy; env restored and threads stopped after."""

    def __init__(self, registry: dict, tmp: Path, **overrides):
        self.own_store = overrides.pop("MLFLOW_TRACKING_URI", None)
        self.uri = self.own_store or copy_registry(registry, tmp / "registry")
        self.tmp, self.overrides = tmp, overrides

    def __enter__(self):
        from mlflow.tracking._tracking_service import utils

        from app import create_app

        self.saved = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
        os.environ["MLFLOW_TRACKING_URI"] = self.uri
        if not self.own_store:
            ensure_challenger(self.uri)
        self.app = create_app(app_config(self.tmp, MLFLOW_TRACKING_URI=self.uri,
                                         **self.overrides))
        return self.app

    def __exit__(self, *exc):
        import mlflow

        self.app.extensions["caretflow"].stop()
        mlflow.set_tracking_uri(self.saved[0])  # the app pinned its own URI globally
        if self.saved[1] is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = self.saved[1]
