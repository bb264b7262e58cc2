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

    @property
    def name(self) -> str:
        """The server's name in the results (also its log file stem)."""
        return self.process.name

    @property
    def url(self) -> str:
        """The prediction URL."""
        return self.process.url + self.predict_path

    def stop(self) -> None:
        """Terminate (then kill) the process."""
        self.process.stop()


def start_caretflow(tracking_uri: str, workdir: Path, workers: int = 2,
                    prediction_log: bool = True, timeout: float = 120) -> Server:
    """Caretflow under gunicorn, serving ``churn@champion`` from ``tracking_uri``.

    Args:
        tracking_uri: the registry store.
        workdir: holds the prediction database, metrics directory and log.
        workers: gunicorn workers.
        prediction_log: the ``PREDICTION_LOG`` setting (prediction log and feedback path).
        timeout: seconds to wait for ``/health``.
    """
    name = f"caretflow-log-{'on' if prediction_log else 'off'}"
    process = Gunicorn(workdir, tracking_uri, workers=workers, name=name, MODEL_NAME="churn",
                       SERVING_ALIAS="champion", API_KEYS=BENCH_KEY,
                       PREDICTION_LOG="1" if prediction_log else "0")
    return Server(process.start(timeout), "/predict")


def start_mlflow(tracking_uri: str, workdir: Path, workers: int = 2,
                 timeout: float = 180) -> Server:
    """``mlflow models serve -m models:/churn@champion --env-manager local -w <workers>``."""
    port = free_port()
    cmd = [str(BIN / "mlflow"), "models", "serve", "-m", "models:/churn@champion",
           "--env-manager", "local", "-w", str(workers), "-h", "127.0.0.1", "-p", str(port)]
    env = env_with(tracking_uri, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true")
    process = ServerProcess("mlflow-serve", cmd, workdir, env, port, health_path="/ping")
    return Server(process.start(timeout), "/invocations")
