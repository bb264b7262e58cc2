"""The two servers under test on loopback ports: caretflow (gunicorn), ``mlflow models serve``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from caretflow.launch import BIN, Gunicorn, ServerProcess, env_with, free_port

BENCH_KEY = "bench-client-key"


@dataclass
class Server:
    """A running server under test and the path its predictions are posted to."""

    process: ServerProcess
    predict_path: str
    label: str = ""

    @property
    def name(self) -> str:
        """The server's name in the results (default: its log file stem)."""
        return self.label or self.process.name

    @property
    def url(self) -> str:
        """The prediction URL."""
        return self.process.url + self.predict_path

    def stop(self) -> None:
        """Terminate (then kill) the process."""
        self.process.stop()


def start_caretflow(tracking_uri: str, workdir: Path, workers: int = 2,
                    prediction_log: bool = True, timeout: float = 120, model: str = "churn",
                    alias: str = "champion", path: str = "/predict",
                    name: str | None = None, **settings) -> Server:
    """Caretflow under gunicorn, serving ``<model>@<alias>`` from ``tracking_uri``.

    Args:
        tracking_uri: the registry store.
        workdir: holds the prediction database, metrics directory and log.
        workers: gunicorn workers.
        prediction_log: the ``PREDICTION_LOG`` setting (prediction log and feedback path).
        timeout: seconds to wait for ``/health``.
        model: ``MODEL_NAME``.
        alias: ``SERVING_ALIAS``.
        path: the route the benchmark posts to (``/predict`` or ``/invocations``).
        name: the server's name in the results (default ``caretflow-log-on`` / ``-off``).
        **settings: further server settings (``WORKER_CLASS`` ...).
    """
    name = name or f"caretflow-log-{'on' if prediction_log else 'off'}"
    process = Gunicorn(workdir, tracking_uri, workers=workers, name=f"{name}-{model}",
                       MODEL_NAME=model, SERVING_ALIAS=alias, API_KEYS=BENCH_KEY,
                       PREDICTION_LOG="1" if prediction_log else "0", **settings)
    return Server(process.start(timeout), path, name)


def start_mlflow(tracking_uri: str, workdir: Path, workers: int = 2, timeout: float = 180,
                 model: str = "churn", alias: str = "champion",
                 name: str = "mlflow-serve") -> Server:
    """``mlflow models serve -m models:/<model>@<alias> --env-manager local -w <workers>``."""
    port = free_port()
    cmd = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{model}@{alias}",
           "--env-manager", "local", "-w", str(workers), "-h", "127.0.0.1", "-p", str(port)]
    env = env_with(tracking_uri, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true")
    process = ServerProcess(f"{name}-{model}", cmd, workdir, env, port, health_path="/ping")
    return Server(process.start(timeout), "/invocations", name)
