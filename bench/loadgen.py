"""HTTP load for the serving benchmark: ``wrk``, ``ab`` or a small Python client.

All three report the same fields: requests, req/s, p50/p90/p99 in milliseconds and errors
(connection errors, timeouts and non-2xx answers), with or without keep-alive. Every run is
bounded in time; the Python client is also bounded in request count.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

from bench import load_tools

TOOLS = ("wrk", "ab", "python")


@dataclass(frozen=True)
class Target:
    """One POST request to repeat: URL, JSON body and headers."""

    url: str
    body: bytes
    headers: dict = field(default_factory=dict)


def _summary(tool: str, connections: int, seconds: float, requests: int, errors: int,
             latencies_ms, keepalive: bool = True) -> dict:
    lat = np.asarray(latencies_ms, dtype=float)
    pct = np.percentile(lat, [50, 90, 99]) if lat.size else [float("nan")] * 3
    return {"tool": tool, "keepalive": keepalive, "connections": connections,
            "seconds": round(seconds, 2), "requests": requests,
            "rps": round(requests / seconds, 1) if seconds else 0.0,
            "p50_ms": round(float(pct[0]), 2), "p90_ms": round(float(pct[1]), 2),
            "p99_ms": round(float(pct[2]), 2), "errors": errors}


def median_round(runs: list[dict]) -> dict:
    """The run with the median req/s (the lower one of an even count).

    It carries every run's req/s (``rps_rounds``) and the errors of all runs.
    """
    ordered = sorted(runs, key=lambda r: r["rps"])
    out = dict(ordered[(len(ordered) - 1) // 2])
    out.update(rps_rounds=[r["rps"] for r in runs], errors=sum(r["errors"] for r in runs))
    return out



class _Worker(threading.Thread):
    def __init__(self, target: Target, deadline: float, budget: list, lock: threading.Lock,
                 keepalive: bool):
        super().__init__(daemon=True)
        self.target, self.deadline, self.budget, self.lock = target, deadline, budget, lock
        self.keepalive = keepalive
        self.latencies: list[float] = []
        self.errors = 0

    def _take(self) -> bool:
        with self.lock:
            if self.budget[0] <= 0:
                return False
            self.budget[0] -= 1
            return True

    def run(self) -> None:
        parts = urlsplit(self.target.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        headers = {"Content-Type": "application/json", **self.target.headers}
        if not self.keepalive:
            headers["Connection"] = "close"
        while time.perf_counter() < self.deadline and self._take():
            start = time.perf_counter()
            try:
                conn.request("POST", parts.path, body=self.target.body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = 200 <= resp.status < 300
                if not self.keepalive or resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
            self.latencies.append((time.perf_counter() - start) * 1000)
            self.errors += not ok
        conn.close()


def run_python(target: Target, connections: int, seconds: float,
               max_requests: int = 100_000, keepalive: bool = True) -> dict:
    """Threads with one connection each (reused when ``keepalive`` and the server allows)."""
    lock, budget = threading.Lock(), [max_requests]
    start = time.perf_counter()
    workers = [_Worker(target, start + seconds, budget, lock, keepalive)
               for _ in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 30)
    elapsed = time.perf_counter() - start
    lat = [x for w in workers for x in w.latencies]
    return _summary("python", connections, elapsed, len(lat), sum(w.errors for w in workers),
                    lat, keepalive)


def resolve(tool: str) -> str:
    """``auto`` -> ``wrk`` when installed, else ``python``; other names as given."""
    if tool == "auto":
        return "wrk" if load_tools.have("wrk") else "python"
    return tool


def load(target: Target, connections: int, seconds: float, tool: str = "auto",
         max_requests: int = 100_000, keepalive: bool = True) -> dict:
    """One bounded load run.

    Args:
        target: the request to repeat.
        connections: concurrent connections.
        seconds: how long to run.
        tool: ``wrk``, ``ab``, ``python`` or ``auto`` (``wrk`` when installed).
        max_requests: request cap of the Python client.
        keepalive: offer persistent connections (off: ``Connection: close`` / no ``-k``).

    Returns:
        tool, keepalive, connections, seconds, requests, rps, p50_ms, p90_ms, p99_ms, errors
        (``wrk`` and ``ab`` add ``q5_ms``, the 5 %, 10 % ... 95 % quantiles; ``ab`` adds
        ``reused``, the requests answered on a kept-alive connection).
    """
    tool = resolve(tool)
    if tool == "wrk":
        return load_tools.run_wrk(target, connections, seconds, keepalive)
    if tool == "ab":
        return load_tools.run_ab(target, connections, seconds, keepalive)
    return run_python(target, connections, seconds, max_requests, keepalive)


def main() -> None:
    """Command line: one bounded load run against a URL; prints the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--body", default="{}", help="JSON request body")
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--tool", default="auto", choices=["auto", *TOOLS])
    parser.add_argument("--no-keepalive", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    result = load(Target(args.url, args.body.encode()), args.connections, args.seconds,
                  args.tool, args.max_requests, not args.no_keepalive)
    logging.getLogger("bench.loadgen").info(json.dumps(result))


if __name__ == "__main__":
    main()
