"""Where the MLflow tracking store is (standard library only: the server imports this too)."""

from __future__ import annotations

import os

from caretflow.paths import ROOT


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the embedded SQLite store in the repo."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{ROOT / 'mlflow.db'}"
