"""Helpers for the serving tests: records, app config, a private registry copy, gunicorn."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from caretflow.launch import free_port
from caretflow.launch import wait_until as wait_for  # noqa: F401 - re-exported for the tests

ROOT = Path(__file__).resolve().parent.parent
CLIENT, ADMIN = "client-key-for-tests", "admin-key-for-tests"
RECORD = {"CreditScore": 619, "Geography": "France", "Gender": "Female", "Age": 42, "Tenure": 2,
          "Balance": 0.0, "NumOfProducts": 1, "HasCrCard": 1, "IsActiveMember": 1,
          "EstimatedSalary": 101348.88}


def headers(key: str = CLIENT) -> dict:
    return {"X-API-Key": key}


def copy_registry(registry: dict, dest: Path) -> str:
    """A private copy of the session registry's store (artifacts are shared read-only)."""
    dest.mkdir(parents=True, exist_ok=True)
    src = Path(registry["uri"].removeprefix("sqlite:///"))
    shutil.copy(src, dest / "mlflow.db")
    return f"sqlite:///{dest / 'mlflow.db'}"


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




def start_gunicorn(tmp: Path, tracking_uri: str, workers: int = 2, **env) -> tuple:
    """Start gunicorn on a free loopback port; returns (process, base URL) once healthy."""
    port = free_port()
    full = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PORT": str(port),
            "WORKERS": str(workers), "API_KEYS": CLIENT, "ADMIN_API_KEYS": ADMIN,
            "PREDICTION_DB_URL": f"sqlite:///{tmp / 'predictions.db'}",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom"), "PYTHONPATH": str(ROOT),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            **env}
    (tmp / "prom").mkdir(exist_ok=True)
    log = open(tmp / "gunicorn.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c",
                             "app/gunicorn.conf.py", "app:create_app()"],
                            cwd=ROOT, env=full, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((tmp / "gunicorn.log").read_text()[-3000:])
        try:
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base
        except requests.RequestException:
            pass
        time.sleep(0.3)
    stop(proc)
    raise RuntimeError("gunicorn did not become healthy:\n" +
                       (tmp / "gunicorn.log").read_text()[-3000:])


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)




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


@pytest.fixture(scope="module")
def shared_app(tiny_registry, tmp_path_factory):
    """One app per test module (for tests that do not move aliases)."""
    with running_app(tiny_registry, tmp_path_factory.mktemp("app")) as app:
        yield app


@pytest.fixture
def client(shared_app):
    return shared_app.test_client()


@pytest.fixture
def fresh_app(tiny_registry, tmp_path):
    """A private app for one test (its registry copy may be changed freely)."""
    with running_app(tiny_registry, tmp_path) as app:
        yield app
