"""Serving side by side: caretflow (log on / off) vs ``mlflow models serve``, same champion.

All servers run at once with the same worker count and serve ``churn@champion`` from the
same registry; every cell (payload x concurrency) is measured on each server in turn,
interleaved, so the ratios come from the same minutes of a noisy machine.

    python -m bench.serve_compare --tracking-uri sqlite:////tmp/caretflow-bench/reg/mlflow.db
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

from bench import loadgen, payloads, servers
from bench.registry import champion

log = logging.getLogger("bench.compare")
RESULTS = Path(__file__).parent / "results"


def targets(server: servers.Server, batch: int) -> loadgen.Target:
    """The request for ``server`` with ``batch`` real rows (same rows for every server)."""
    rows = payloads.records(batch, seed=batch)
    if server.name.startswith("caretflow"):
        return loadgen.Target(server.url, payloads.caretflow_body(rows),
                              {"X-API-Key": servers.BENCH_KEY})
    return loadgen.Target(server.url, payloads.mlflow_body(rows))


def check(target: loadgen.Target) -> None:
    """One request must succeed before measuring (a broken payload is not a benchmark)."""
    res = loadgen.run_python(target, 1, 30, max_requests=1)
    if res["errors"] or not res["requests"]:
        raise RuntimeError(f"{target.url} does not answer the benchmark request")


def measure(running: list[servers.Server], batches, concurrencies, seconds: float, tool: str,
            warmup: float) -> list[dict]:
    """Every (batch, concurrency) cell on every server, interleaved."""
    rows = []
    for batch in batches:
        reqs = {s.name: targets(s, batch) for s in running}
        for s in running:
            check(reqs[s.name])
            loadgen.load(reqs[s.name], max(concurrencies), warmup, tool)
        for conc in concurrencies:
            for s in running:
                res = loadgen.load(reqs[s.name], conc, seconds, tool)
                res.update(server=s.name, batch=batch, rows_per_s=round(res["rps"] * batch, 1))
                log.info("%-18s batch %5d  c=%-3d %8.1f req/s  p50 %7.2f  p99 %7.2f ms  err %d",
                         s.name, batch, conc, res["rps"], res["p50_ms"], res["p99_ms"],
                         res["errors"])
                rows.append(res)
    return rows


def ratios(rows: list[dict], base: str = "caretflow-log-on", other: str = "mlflow-serve") -> list:
    """Ratios caretflow / mlflow per cell: throughput and p50 (same run)."""
    index = {(r["server"], r["batch"], r["connections"]): r for r in rows}
    out = []
    for (name, batch, conc), r in index.items():
        o = index.get((other, batch, conc))
        if name != base or o is None:
            continue
        out.append({"batch": batch, "connections": conc,
                    "rps_ratio": round(r["rps"] / o["rps"], 2) if o["rps"] else None,
                    "p50_ratio": round(r["p50_ms"] / o["p50_ms"], 3) if o["p50_ms"] else None})
    return out


def run(tracking_uri: str, workdir: Path, batches, concurrencies, seconds: float, tool: str,
        workers: int = 2, with_mlflow: bool = True, warmup: float = 2.0) -> dict:
    """Start the servers, measure every cell, stop the servers; return the result document."""
    running: list[servers.Server] = []
    try:
        running.append(servers.start_caretflow(tracking_uri, workdir, workers, True))
        running.append(servers.start_caretflow(tracking_uri, workdir, workers, False))
        if with_mlflow:
            running.append(servers.start_mlflow(tracking_uri, workdir, workers))
        rows = measure(running, batches, concurrencies, seconds, tool, warmup)
    finally:
        for s in running:
            s.stop()
    return {"champion": champion(tracking_uri), "workers": workers,
            "tool": rows[0]["tool"] if rows else tool, "seconds_per_cell": seconds,
            "results": rows, "ratios": ratios(rows),
            "log_cost": ratios(rows, "caretflow-log-on", "caretflow-log-off")}


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--batches", default="1,1000")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=10.0, help="per cell and server")
    parser.add_argument("--tool", default="auto", choices=["auto", "wrk", "python"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-mlflow", action="store_true", help="caretflow only (smoke runs)")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve_compare.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="caretflow-serve-") as tmp:
        doc = run(args.tracking_uri, Path(tmp), [int(b) for b in args.batches.split(",")],
                  [int(c) for c in args.concurrency.split(",")], args.seconds, args.tool,
                  args.workers, not args.no_mlflow)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    for r in doc["ratios"]:
        log.info("caretflow/mlflow batch %5d c=%-3d  req/s x%.2f  p50 x%.3f", r["batch"],
                 r["connections"], r["rps_ratio"], r["p50_ratio"])
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
