"""The two servers under test on loopback ports: caretflow (gunicorn), ``mlflow models serve``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bench import loadgen, payloads
from caretflow.launch import BIN, Gunicorn, ServerProcess, env_with, free_port

log = logging.getLogger("bench.servers")

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


def interleaved_options(parser, out: Path) -> None:
    """The options of a script comparing servers in interleaved rounds, writing to ``out``."""
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--models", nargs="+", default=["churn", "ratings"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--start-timeout", type=float, default=180)
    parser.add_argument("--out", type=Path, default=out)


def target(server: Server, model: str, batch: int) -> loadgen.Target:
    """The request for ``batch`` real rows of ``model``: the same bytes for every server."""
    body = payloads.dataframe_split(payloads.records(batch, seed=batch, dataset=model))
    return loadgen.Target(server.url, body, {"X-API-Key": BENCH_KEY})


def interleaved_rounds(model: str, starts: list, opts, tools: list[str],
                       run=None) -> list[dict]:
    """Every (client, server) cell of ``model``, keep-alive off, in ``opts.rounds`` rounds.

    The servers are started in order and each is warmed up; every one started is stopped
    at the end, whatever happens (a server that fails to start included).

    Args:
        model: the model they serve (one real record of it is the body).
        starts: one callable per server, starting it and returning its ``Server``.
        opts: ``interleaved_options``' values.
        tools: load clients.
        run: ``run(server, request, tool) -> result`` for one cell (default: one load run).
    """
    def load(server, req, tool):
        return loadgen.load(req, opts.concurrency, opts.seconds, tool, keepalive=False)

    run, running, rows = run or load, [], []
    try:
        for start in starts:
            running.append(start())
        reqs = {s.name: target(s, model, 1) for s in running}
        for s in running:
            loadgen.load(reqs[s.name], opts.concurrency, 1.0, tools[0], keepalive=False)
        for rnd in range(opts.rounds):
            for tool in tools:
                for s in running:
                    res = run(s, reqs[s.name], tool)
                    res.update(model=model, server=s.name, round=rnd)
                    cpu = res.get("cpu_us_per_request")
                    log.info("%-7s %-17s round %d %-3s %8.1f req/s  p50 %6.2f ms  errors %d%s",
                             model, s.name, rnd, tool, res["rps"], res["p50_ms"] or 0,
                             res["errors"], "" if cpu is None else f"  {cpu} us CPU/request")
                    rows.append(res)
    finally:
        for s in running:
            s.stop()
    return rows
