"""The external load clients of the serving benchmark: ``wrk`` and ApacheBench (``ab``).

Both POST the same body file with the same headers. Keep-alive is the client's offer:
``wrk`` keeps connections open unless told ``Connection: close``; ``ab -k`` sends HTTP/1.0
``Connection: Keep-Alive`` (and counts the requests the server really answered on a reused
connection). Either way the server decides: a server that closes after every answer gets
one request per connection whatever the client offers.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = io.open("{body}", "rb"):read("*a")
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  local q = {{}}
  for p = 5, 95, 5 do q[#q + 1] = latency:percentile(p) end
  io.write(string.format(
    'CARETFLOW {{"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, '
    .. '"p90_us": %d, "p99_us": %d, "q5_us": [%s]}}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    table.concat(q, ", ")))
end
"""


def have(tool: str) -> bool:
    """Whether ``tool`` (``wrk``, ``ab``) is on PATH."""
    return shutil.which(tool) is not None


def _headers(target, keepalive: bool) -> dict:
    headers = {"Content-Type": "application/json", **target.headers}
    if not keepalive:
        headers["Connection"] = "close"
    return headers


def run_wrk(target, connections: int, seconds: float, keepalive: bool = True) -> dict:
    """One ``wrk`` run; latency percentiles from its HdrHistogram (microseconds)."""
    with tempfile.TemporaryDirectory(prefix="caretflow-wrk-") as tmp:
        body, script = Path(tmp) / "body.json", Path(tmp) / "post.lua"
        body.write_bytes(target.body)
        headers = "\n".join(f'wrk.headers["{k}"] = "{v}"'
                            for k, v in _headers(target, keepalive).items())
        script.write_text(WRK_SCRIPT.format(body=body, headers=headers))
        cmd = ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{max(1, int(seconds))}s",
               "--timeout", "10s", "-s", str(script), target.url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                             check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("CARETFLOW "))
    res = json.loads(line.removeprefix("CARETFLOW "))
    secs = res["duration_us"] / 1e6
    return {"tool": "wrk", "keepalive": keepalive, "connections": connections,
            "seconds": round(secs, 2), "requests": res["requests"],
            "rps": round(res["requests"] / secs, 1) if secs else 0.0,
            **{f"p{q}_ms": round(res[f"p{q}_us"] / 1000, 2) for q in (50, 90, 99)},
            "errors": res["errors"], "q5_ms": [round(v / 1000, 2) for v in res["q5_us"]]}


def _field(pattern: str, text: str, default: float = 0.0) -> float:
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else default


def _quantile(pct: dict[int, float], q: int) -> float | None:
    """``ab``'s q % quantile; None where it reads past its last request (few requests)."""
    value = pct.get(q, 0.0)
    return round(value, 2) if value > 0 else None


def run_ab(target, connections: int, seconds: float, keepalive: bool = True) -> dict:
    """One ``ab`` run (``-p body -T application/json``, ``-k`` for keep-alive)."""
    with tempfile.TemporaryDirectory(prefix="caretflow-ab-") as tmp:
        body, csv = Path(tmp) / "body.json", Path(tmp) / "pct.csv"
        body.write_bytes(target.body)
        cmd = ["ab", "-q", "-r", "-l", "-s", "10", "-t", str(max(1, int(seconds))),
               "-n", "10000000", "-c", str(connections), "-p", str(body),
               "-T", "application/json", "-e", str(csv)]
        cmd += ["-k"] if keepalive else []
        for key, value in target.headers.items():
            cmd += ["-H", f"{key}: {value}"]
        out = subprocess.run([*cmd, target.url], capture_output=True, text=True,
                             timeout=seconds + 60, check=True).stdout
        pct = {int(q): float(ms) for q, ms in
               (line.split(",") for line in csv.read_text().splitlines()[1:])}
    secs = _field(r"^Time taken for tests:\s+([\d.]+)", out)
    done = int(_field(r"^Complete requests:\s+(\d+)", out))
    failed = {k: int(_field(rf"{k}: (\d+)", out)) for k in ("Connect", "Receive", "Exceptions")}
    non2xx = int(_field(r"^Non-2xx responses:\s+(\d+)", out))
    return {"tool": "ab", "keepalive": keepalive, "connections": connections,
            "seconds": round(secs, 2), "requests": done,
            "rps": round(done / secs, 1) if secs else 0.0,
            **{f"p{q}_ms": _quantile(pct, q) for q in (50, 90, 99)},
            "errors": sum(failed.values()) + non2xx,
            "reused": int(_field(r"^Keep-Alive requests:\s+(\d+)", out)),
            "q5_ms": [_quantile(pct, q) for q in range(5, 100, 5)]}
