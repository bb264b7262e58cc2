"""caretflow's sync worker (``app.worker``) against gunicorn's stock one, on the same champion.

Two caretflow servers per model, identical but for ``WORKER_CLASS`` (``sync``: gunicorn's
stock worker, which writes headers and body in two sends and lingers after its FIN until
the client closes; the default: one segment per answer, closed at once after a clean
request). Both get the same ``/invocations`` body at concurrency 8 with keep-alive off,
in interleaved rounds, with ``wrk`` and ``ab`` (``--tools``).

    python -m bench.worker_close --tracking-uri sqlite:////tmp/caretflow-bench/registry/mlflow.db
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import tempfile
from pathlib import Path

from bench import loadgen, machine, servers

log = logging.getLogger("bench.worker_close")
RESULTS = Path(__file__).parent / "results"
WORKERS = {"gunicorn-sync": {"WORKER_CLASS": "sync"}, "caretflow-worker": {}}


def measure(model: str, tracking_uri: str, workdir: Path, opts) -> list[dict]:
    """Interleaved rounds of every (client, server) cell for one model."""
    starts = [functools.partial(servers.start_caretflow, tracking_uri, workdir, opts.workers,
                                True, opts.start_timeout, model=model, path="/invocations",
                                name=name, **env) for name, env in WORKERS.items()]
    return servers.interleaved_rounds(model, starts, opts, opts.tools)


def ratios(rows: list[dict]) -> list[dict]:
    """Per model and client: each worker's median req/s (``loadgen.median_round``), their ratio."""
    out = []
    for model in sorted({r["model"] for r in rows}):
        for tool in dict.fromkeys(r["tool"] for r in rows):  # in the order measured
            med = {name: loadgen.median_round([r for r in rows if (
                r["model"], r["tool"], r["server"]) == (model, tool, name)])["rps"]
                for name in WORKERS}
            out.append({"model": model, "tool": tool, **{f"{k}_rps": v for k, v in med.items()},
                        "ratio": round(med["caretflow-worker"] / med["gunicorn-sync"], 2)})
    return out


def main() -> None:
    """Command line: measure, print the medians and ratios, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    servers.interleaved_options(parser, RESULTS / "worker_close.json")
    parser.add_argument("--tools", type=lambda v: v.split(","), default=["wrk", "ab"],
                        help="comma-separated load clients (wrk, ab, python)")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = machine.facts()
    with tempfile.TemporaryDirectory(prefix="caretflow-worker-") as tmp:
        rows = [r for m in opts.models for r in measure(m, opts.tracking_uri, Path(tmp), opts)]
    summary = ratios(rows)
    for s in summary:
        log.info("%-7s %-3s gunicorn sync %7.1f req/s  caretflow worker %7.1f req/s  x%.2f",
                 s["model"], s["tool"], s["gunicorn-sync_rps"], s["caretflow-worker_rps"],
                 s["ratio"])
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps({"machine_start": started, "machine_end": machine.facts(),
                                    "concurrency": opts.concurrency, "keepalive": False,
                                    "rows": rows, "ratios": summary}, indent=1))
    log.info("wrote %s", opts.out)


if __name__ == "__main__":
    main()
