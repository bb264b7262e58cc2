"""Latency of ``POST /recommend`` (k=10 over the 50-item ratings catalogue) over real HTTP.

Starts gunicorn (2 sync workers, prediction log on) on a loopback port over a ratings
registry, sends a bounded number of sequential requests (one connection each, as a sync
worker closes it anyway) for the generator's users, and reports client-side p50/p90/p99.
Prints the figures and writes ``bench/results/recommend_latency.json``.

    python -m bench.recommend_latency                        # tiny registry in a temp dir
    python -m bench.recommend_latency --tracking-uri sqlite:////abs/mlflow.db --requests 2000
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

log = logging.getLogger("bench.recommend")
RESULTS = Path(__file__).parent / "results"
TARGET_P50_MS = 20.0
N_USERS = 100  # the generator's users (conf/dataset/ratings.yaml)
TINY = ["profile.max_rows=1500"]  # with bench.registry's quick profile: a registry in ~1 min


def ensure_registry(workdir: Path) -> str:
    """A ratings registry (v2_random_forest as champion, tiny data) in ``workdir``, built once."""
    from bench import registry

    return registry.ensure(workdir, ["v2_random_forest"], TINY, dataset="ratings")


def _call(host: str, port: int, body: bytes, key: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("POST", "/recommend", body,
                     {"Content-Type": "application/json", "X-API-Key": key})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def measure(base: str, key: str, requests: int = 500, seconds: float = 60.0, k: int = 10,
            warmup: int = 20) -> dict:
    """Sequential ``/recommend`` calls, bounded by count and time; latency in milliseconds.

    Args:
        base: server base URL (``http://127.0.0.1:<port>``).
        key: a client API key.
        requests: most measured requests.
        seconds: most measuring time.
        k: items per answer.
        warmup: unmeasured requests first (every worker loads and warms up).

    Returns:
        Counts, errors, cold-start share and p50/p90/p99/mean in ms.
    """
    url = urlsplit(base)
    bodies = [json.dumps({"user_id": u, "k": k, "exclude_rated": True}).encode()
              for u in range(1, N_USERS + 1)]
    for i in range(warmup):
        _call(url.hostname, url.port, bodies[i % len(bodies)], key)
    times, errors, cold = [], 0, 0
    deadline = time.perf_counter() + seconds
    for i in range(requests):
        if time.perf_counter() > deadline:
            break
        start = time.perf_counter()
        status, answer = _call(url.hostname, url.port, bodies[i % len(bodies)], key)
        times.append((time.perf_counter() - start) * 1000)
        if status != 200 or not 0 < len(answer["items"]) <= k:
            errors += 1
        cold += bool(answer.get("cold_start"))
    ms = np.asarray(times)
    return {"requests": len(ms), "errors": errors, "cold_start_share": round(cold / len(ms), 3),
            "k": k, **{f"p{q}_ms": round(float(np.percentile(ms, q)), 2) for q in (50, 90, 99)},
            "mean_ms": round(float(ms.mean()), 2)}


def run(tracking_uri: str, workdir: Path, requests: int, seconds: float, workers: int = 2) -> dict:
    """Start gunicorn over ``tracking_uri``, measure, stop it; the result with its setting."""
    from bench.servers import BENCH_KEY
    from caretflow.launch import Gunicorn

    with Gunicorn(workdir, tracking_uri, workers=workers, MODEL_NAME="ratings",
                  API_KEYS=BENCH_KEY).start() as server:
        figures = measure(server.url, BENCH_KEY, requests, seconds)
    return {**figures, "workers": workers, "prediction_log": True, "connection": "new per request",
            "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
            "target_p50_ms": TARGET_P50_MS, "meets_target": figures["p50_ms"] <= TARGET_P50_MS,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def main() -> None:
    """Command line: build or reuse a registry, measure, print and write the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="existing store with ratings@champion")
    parser.add_argument("--workdir", type=Path, help="registry + server files (default: temp)")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "recommend_latency.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="caretflow-recommend-"))
    workdir.mkdir(parents=True, exist_ok=True)
    uri = args.tracking_uri or ensure_registry(workdir)
    result = run(uri, workdir, args.requests, args.seconds, args.workers)
    log.info("/recommend k=%d, %d requests (%d errors, %.0f%% cold start), %d workers: "
             "p50 %.2f ms, p90 %.2f ms, p99 %.2f ms (target p50 <= %.0f ms: %s)",
             result["k"], result["requests"], result["errors"],
             100 * result["cold_start_share"], result["workers"], result["p50_ms"],
             result["p90_ms"], result["p99_ms"], TARGET_P50_MS,
             "met" if result["meets_target"] else "MISSED")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
