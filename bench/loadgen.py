"""HTTP load for the serving benchmark: ``wrk`` when installed, else a small Python client.

Both report the same fields: requests, req/s, p50/p90/p99 in milliseconds and errors
(connection errors, timeouts and non-2xx answers). Every run is bounded in time; the Python
client is also bounded in request count.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = io.open("{body}", "rb"):read("*a")
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'CARETFLOW {{"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, '
    .. '"p90_us": %d, "p99_us": %d}}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Target:
    """One POST request to repeat: URL, JSON body and headers."""

    url: str
    body: bytes
    headers: dict = field(default_factory=dict)


def have_wrk() -> bool:
    """Whether the ``wrk`` binary is on PATH."""
    return shutil.which("wrk") is not None


def _summary(tool: str, connections: int, seconds: float, requests: int, errors: int,
             latencies_ms) -> dict:
    lat = np.asarray(latencies_ms, dtype=float)
    pct = np.percentile(lat, [50, 90, 99]) if lat.size else [float("nan")] * 3
    return {"tool": tool, "connections": connections, "seconds": round(seconds, 2),
            "requests": requests, "rps": round(requests / seconds, 1) if seconds else 0.0,
            "p50_ms": round(float(pct[0]), 2), "p90_ms": round(float(pct[1]), 2),
            "p99_ms": round(float(pct[2]), 2), "errors": errors}


def run_wrk(target: Target, connections: int, seconds: float) -> dict:
    """One ``wrk`` run (keep-alive where the server allows it, latency from HdrHistogram)."""
    with tempfile.TemporaryDirectory(prefix="caretflow-wrk-") as tmp:
        body, script = Path(tmp) / "body.json", Path(tmp) / "post.lua"
        body.write_bytes(target.body)
        headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in
                            {"Content-Type": "application/json", **target.headers}.items())
        script.write_text(WRK_SCRIPT.format(body=body, headers=headers))
        cmd = ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{max(1, int(seconds))}s",
               "--timeout", "10s", "-s", str(script), target.url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                             check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("CARETFLOW "))
    res = json.loads(line.removeprefix("CARETFLOW "))
    secs = res["duration_us"] / 1e6
    out = _summary("wrk", connections, secs, res["requests"], res["errors"], [])
    out.update({f"p{q}_ms": round(res[f"p{q}_us"] / 1000, 2) for q in (50, 90, 99)})
    return out


class _Worker(threading.Thread):
    def __init__(self, target: Target, deadline: float, budget: list, lock: threading.Lock):
        super().__init__(daemon=True)
        self.target, self.deadline, self.budget, self.lock = target, deadline, budget, lock
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
        while time.perf_counter() < self.deadline and self._take():
            start = time.perf_counter()
            try:
                conn.request("POST", parts.path, body=self.target.body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = 200 <= resp.status < 300
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
            self.latencies.append((time.perf_counter() - start) * 1000)
            self.errors += not ok
        conn.close()


def run_python(target: Target, connections: int, seconds: float,
               max_requests: int = 100_000) -> dict:
    """Threads with one persistent connection each; bounded by time and request count."""
    lock, budget = threading.Lock(), [max_requests]
    start = time.perf_counter()
    workers = [_Worker(target, start + seconds, budget, lock) for _ in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 30)
    elapsed = time.perf_counter() - start
    lat = [x for w in workers for x in w.latencies]
    return _summary("python", connections, elapsed, len(lat), sum(w.errors for w in workers),
                    lat)


def load(target: Target, connections: int, seconds: float, tool: str = "auto",
         max_requests: int = 100_000) -> dict:
    """One bounded load run with ``wrk`` (``auto`` when installed) or the Python client.

    Args:
        target: the request to repeat.
        connections: concurrent connections.
        seconds: how long to run.
        tool: ``wrk``, ``python`` or ``auto``.
        max_requests: request cap of the Python client.

    Returns:
        tool, connections, seconds, requests, rps, p50_ms, p90_ms, p99_ms, errors.
    """
    if tool == "wrk" or (tool == "auto" and have_wrk()):
        return run_wrk(target, connections, seconds)
    return run_python(target, connections, seconds, max_requests)


def main() -> None:
    """Command line: one bounded load run against a URL; prints the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--body", default="{}", help="JSON request body")
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--tool", default="auto", choices=["auto", "wrk", "python"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    result = load(Target(args.url, args.body.encode()), args.connections, args.seconds,
                  args.tool, args.max_requests)
    logging.getLogger("bench.loadgen").info(json.dumps(result))


if __name__ == "__main__":
    main()
