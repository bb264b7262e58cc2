"""Where a one-record request's server CPU goes, layer by layer, under the headline client.

Five servers with the same gunicorn worker (``app.worker.PromptSyncWorker``) and worker
count get the same one-record ``/invocations`` body at concurrency 8 with keep-alive off,
in interleaved rounds: a bare WSGI app answering a constant, a Flask app answering the
same constant (``bench/floor_apps.py``), caretflow with ``PREDICTION_LOG=0``, caretflow
with the log on, and the same with ``LEAN_ROUTES=0`` (Flask's dispatch for every request,
``app.lean``). For each run, the CPU time (user + system) of the server's processes
divided by the requests answered is the server's CPU per request; differences between
rows are what each layer adds (connection and gunicorn; Flask; caretflow's validation,
model, answer and telemetry; the prediction-log write). Before the servers start, the same
request is timed in-process with warm caches and after a cache sweep
(``bench/request_cold.py``).

    python -m bench.request_budget --tracking-uri sqlite:////tmp/caretflow-bench/registry/mlflow.db
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import statistics
import tempfile
from pathlib import Path

import psutil

from bench import loadgen, machine, request_cold, servers
from caretflow.launch import BIN, ServerProcess, env_with, free_port

log = logging.getLogger("bench.request_budget")
RESULTS = Path(__file__).parent / "results"
FLOORS = {"wsgi-constant": "bench.floor_apps:constant_wsgi",
          "flask-constant": "bench.floor_apps:constant_flask()"}


def start_floor(name: str, app: str, workdir: Path, workers: int, timeout: float):
    """``app`` under gunicorn with caretflow's worker class (no caretflow code runs)."""
    port = free_port()
    cmd = [str(BIN / "gunicorn"), "-w", str(workers), "-k", "app.worker.PromptSyncWorker",
           "-b", f"127.0.0.1:{port}", app]
    process = ServerProcess(name, cmd, workdir, env_with(None), port, health_path="/ping")
    return servers.Server(process.start(timeout), "/invocations", name)


def server_cpu(server: servers.Server) -> float:
    """CPU seconds (user + system) used so far by the server's master and workers."""
    try:
        master = psutil.Process(server.process.proc.pid)
        procs = [master, *master.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


def run(server: servers.Server, req: loadgen.Target, tool: str, opts) -> dict:
    """One load run, with the server's CPU per answered request."""
    before = server_cpu(server)
    res = loadgen.load(req, opts.concurrency, opts.seconds, tool, keepalive=False)
    used = server_cpu(server) - before
    res["cpu_us_per_request"] = round(used / max(res["requests"], 1) * 1e6, 1)
    return res


def measure(model: str, tracking_uri: str, workdir: Path, opts) -> list[dict]:
    """Interleaved rounds of the five servers for ``model``."""
    starts = [functools.partial(start_floor, name, app, workdir / name, opts.workers,
                                opts.start_timeout) for name, app in FLOORS.items()]
    starts += [functools.partial(servers.start_caretflow, tracking_uri, workdir, opts.workers,
                                 on, opts.start_timeout, model=model, path="/invocations")
               for on in (False, True)]
    starts.append(functools.partial(servers.start_caretflow, tracking_uri, workdir,
                                    opts.workers, True, opts.start_timeout, model=model,
                                    path="/invocations", name="caretflow-lean-off",
                                    LEAN_ROUTES="0"))
    return servers.interleaved_rounds(model, starts, opts, [opts.tool],
                                      functools.partial(run, opts=opts))


def summary(rows: list[dict]) -> list[dict]:
    """Per model and server: the median round's req/s and the median CPU per request."""
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        cells.setdefault((r["model"], r["server"]), []).append(r)
    out = []
    for (model, server), runs in cells.items():
        best = loadgen.median_round(runs)
        out.append({"model": model, "server": server, "rps": best["rps"],
                    "rps_rounds": best["rps_rounds"], "errors": best["errors"],
                    "cpu_us_per_request": statistics.median(
                        r["cpu_us_per_request"] for r in runs)})
    return out


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    servers.interleaved_options(parser, RESULTS / "request_budget.json")
    parser.add_argument("--tool", default="ab", help="ab (the headline client), wrk, python")
    parser.add_argument("--calls", type=int, default=2000,
                        help="in-process calls per round (warm and cold)")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    facts = machine.facts()
    with tempfile.TemporaryDirectory(prefix="caretflow-budget-") as tmp:
        in_process = [r for m in opts.models for r in request_cold.measure(
            opts.tracking_uri, m, Path(tmp) / "in-process", opts.calls)]
        rows = [r for m in opts.models for r in measure(m, opts.tracking_uri, Path(tmp), opts)]
    facts["load_end"] = machine.facts()["load"]
    result = {"machine": facts, "tool": opts.tool, "keepalive": False,
              "concurrency": opts.concurrency, "workers": opts.workers,
              "seconds": opts.seconds, "rounds": opts.rounds, "rows": rows,
              "summary": summary(rows), "in_process": in_process}
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2))
    log.info("wrote %s", opts.out)


if __name__ == "__main__":
    main()
