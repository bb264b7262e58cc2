"""Latency vs batch size for caretflow (1 to 10,000 rows), over HTTP and in-process.

One client, one request at a time, prediction logging on; beside each HTTP figure the
served model's own time for the same rows, so the gap is the HTTP, validation and
logging cost.

    python -m bench.serve_batch --tracking-uri sqlite:////tmp/caretflow-bench/reg/mlflow.db
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

from bench import loadgen, payloads, servers
from bench.serve_floor import columns, load_served, time_call

log = logging.getLogger("bench.batch")
RESULTS = Path(__file__).parent / "results"
SIZES = "1,10,100,300,1000,3000,10000"


def curve(tracking_uri: str, workdir: Path, sizes: list[int], seconds: float,
          max_requests: int = 2000) -> list[dict]:
    """p50/p90 per batch size: HTTP round trip (Python client) and in-process model time."""
    _, served = load_served(tracking_uri)
    server = servers.start_caretflow(tracking_uri, workdir, workers=2, prediction_log=True)
    out = []
    try:
        for n in sizes:
            rows = payloads.records(n, seed=n)
            target = loadgen.Target(server.url, payloads.caretflow_body(rows),
                                    {"X-API-Key": servers.BENCH_KEY})
            loadgen.run_python(target, 1, seconds / 4, max_requests=3)  # warm-up
            http = loadgen.run_python(target, 1, seconds, max_requests=max_requests)
            cols = columns(payloads.frame(n, seed=n))
            model = time_call(lambda c=cols: served.predict_details(c), seconds / 2)
            out.append({"rows": n, "http_p50_ms": http["p50_ms"], "http_p90_ms": http["p90_ms"],
                        "http_requests": http["requests"], "errors": http["errors"],
                        "model_p50_ms": model["p50_ms"],
                        "rows_per_s": round(n / http["p50_ms"] * 1000, 1)})
            log.info("%6d rows  HTTP p50 %8.2f ms  model p50 %8.2f ms  err %d", n,
                     http["p50_ms"], model["p50_ms"], http["errors"])
    finally:
        server.stop()
    return out


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--sizes", default=SIZES)
    parser.add_argument("--seconds", type=float, default=4.0, help="per batch size")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve_batch.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="caretflow-batch-") as tmp:
        rows = curve(args.tracking_uri, Path(tmp), [int(s) for s in args.sizes.split(",")],
                     args.seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"prediction_log": True, "rows": rows}, indent=2))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
