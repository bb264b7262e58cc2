"""gunicorn settings: ``gunicorn -c app/gunicorn.conf.py 'app:create_app()'``.

Each worker builds its own app (no preload), so each has its own background threads
(alias refresh, live metrics) and its own database connections.
"""

import logging
import logging.config
import os
import shutil
import tempfile

from gunicorn.glogging import Logger

from app import logs

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WORKERS", "2"))
threads = int(os.environ.get("THREADS", "1"))
# One request per connection (app.worker: one segment per answer, no linger after it);
# WORKER_CLASS=sync gives gunicorn's stock worker.
worker_class = os.environ.get("WORKER_CLASS") or (
    "gthread" if threads > 1 else "app.worker.PromptSyncWorker")
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))  # model loading happens in the worker
graceful_timeout = 10
keepalive = 5
preload_app = False
limit_request_line = 4096
limit_request_fields = 50
accesslog = os.environ.get("ACCESS_LOG") or None
# The time, pid and request id lead every line (app.logs): the access line says the rest.
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms "%(a)s"'
loglevel = os.environ.get("LOG_LEVEL", "info")
# The control socket defaults to one per user: off unless a path is given, so several
# instances (and tests) can run side by side.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket

# A stopped registry must not hang a worker for minutes inside MLflow's HTTP retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
# Model downloads in a worker: no progress bars in the server log.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class CaretflowLogger(Logger):
    """gunicorn's logger with the server's logging set-up (``app.logs.gunicorn_config``).

    Replaces the handlers gunicorn set up, so its error and access lines share the format
    of ``app.*`` / ``caretflow.*`` (``LOG_LEVEL``, ``LOG_FORMAT``, request ids); warnings go
    through logging too. Access lines stay off unless ``ACCESS_LOG`` is set (no per-request
    cost when off).
    """

    def setup(self, cfg):
        """The default set-up, then ours over it (also on a configuration reload)."""
        super().setup(cfg)
        logging.config.dictConfig(logs.gunicorn_config(cfg.accesslog))
        logging.captureWarnings(True)


logger_class = CaretflowLogger

# Prometheus multiprocess mode: every worker writes its samples to a shared directory.
_OWN_PROM_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _OWN_PROM_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="caretflow-prom-")


def on_starting(server):
    """Start from an empty metrics directory."""
    prom = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(prom, exist_ok=True)
    for name in os.listdir(prom):
        os.remove(os.path.join(prom, name))


def child_exit(server, worker):
    """Drop a dead worker's live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this config created."""
    if _OWN_PROM_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
