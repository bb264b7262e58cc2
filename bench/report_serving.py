"""The serving sections of ``docs/benchmarks.md``: headline, every cell, keep-alive and the grid."""

from __future__ import annotations

from bench.report_text import setting_name


def table(head: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join("–" if v is None else str(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _ka(row: dict) -> str:
    return "on" if row["keepalive"] else "off"


def _in(row: dict, setting: dict) -> bool:
    return row["tool"] == setting.get("tool") and row["keepalive"] == setting.get("keepalive")


def headline(cmp: dict) -> str:
    """Caretflow (log on) against mlflow serve under the headline setting, plus the extra rows."""
    h = cmp["headline"]
    rows = [r for r in cmp["results"] if _in(r, h)]
    index = {(r["model"], r["server"], r["batch"], r["connections"]): r for r in rows}
    out = []
    for r in rows:
        if r["server"] != "caretflow-log-on":
            continue
        m = index.get((r["model"], "mlflow-serve", r["batch"], r["connections"]))
        ratio = f"×{r['rps'] / m['rps']:.2f}" if m and m["rps"] else None
        out.append([r["model"], r["batch"], r["connections"], r["rps"], r["p50_ms"], r["p99_ms"],
                    m and m["rps"], m and m["p50_ms"], m and m["p99_ms"], ratio])
    extra = [[r["model"], r["server"], r["batch"], r["connections"], r["rps"], r["p50_ms"],
              r["p99_ms"], r["errors"]] for r in rows
             if r["server"] not in ("caretflow-log-on", "caretflow-log-off", "mlflow-serve")]
    parts = [f"Client setting: {setting_name(h)} for both servers ({h['rule']} at 1 record, "
             f"concurrency {h['connections']}, of every setting measured below).",
             table(["model", "records/request", "concurrency", "caretflow req/s",
                    "caretflow p50 ms", "caretflow p99 ms", "mlflow req/s", "mlflow p50 ms",
                    "mlflow p99 ms", "req/s ratio"], out)]
    if extra:
        parts += ["Other versions of the same registry, served by caretflow as separate rows "
                  "(not the champion; same setting):",
                  table(["model", "server", "records/request", "concurrency", "req/s",
                         "p50 ms", "p99 ms", "errors"], extra)]
    return "\n\n".join(parts)


def every_cell(cmp: dict) -> str:
    """Every measured cell."""
    rows = [[r["model"], r["server"], r["batch"], r["connections"], r["tool"], _ka(r),
             r["rps"], r["rows_per_s"], r["p50_ms"], r["p90_ms"], r["p99_ms"], r["errors"],
             r.get("reused")] for r in cmp["results"]]
    return table(["model", "server", "records/request", "concurrency", "client", "keep-alive",
                  "req/s", "records/s", "p50 ms", "p90 ms", "p99 ms", "errors",
                  "ab: kept-alive requests"], rows)


def log_cost(cmp: dict) -> str:
    """Log on / log off ratios under the headline setting."""
    rows = [[r["model"], r["batch"], r["connections"], f"×{r['rps_ratio']}", f"×{r['p50_ratio']}"]
            for r in cmp["log_cost"] if _in(r, cmp["headline"])]
    return ("`PREDICTION_LOG=1` (default) vs `PREDICTION_LOG=0`, same run, same setting. "
            "Ratios log on / log off:\n\n"
            + table(["model", "records/request", "concurrency", "req/s ratio", "p50 ratio"], rows))


def quantile_grid(cmp: dict, model: str = "churn") -> str:
    """One record at concurrency 1: every server, client and keep-alive, quantiles 10..90 %."""
    rows = [[r["server"], r["tool"], _ka(r), r["p50_ms"],
             ", ".join("–" if v is None else f"{v}" for v in r["q5_ms"][1::2])]
            for r in cmp["results"] if r["model"] == model and r["batch"] == 1
            and r["connections"] == 1 and r.get("q5_ms")]
    return table(["server", "client", "keep-alive", "p50 ms",
                  "latency quantiles 10, 20 … 90 % (ms)"], rows)


def _probe(probe: dict, server: str, keepalive: bool) -> dict:
    return next((r for r in probe["rows"] if r["server"] == server
                 and r["keepalive"] == keepalive), {})


def ack_section(cmp: dict | None, probe: dict | None) -> str:
    """The 4 ms grid: the quantiles, the header-to-body gap per server and the socket check."""
    parts = []
    if cmp:
        parts += ["One record, concurrency 1, from the cells above (wrk's quantiles are "
                  "HdrHistogram's; ab's come from its `-e` CSV):", quantile_grid(cmp)]
    if probe:
        rows = [[r["server"], "on" if r["keepalive"] else "off", r["requests"],
                 r["first_byte_p50_ms"], r["last_byte_p50_ms"], r["gap_p50_ms"],
                 f"{100 * r['share_gap_over_30ms']:.0f} %"] for r in probe["rows"]]
        parts += [
            "`bench/ack_probe.py` (same run, same registry) writes each request in one "
            "`send` (as wrk and ab do) and times the first and the last byte of each answer "
            f"({probe['model']}, one record):",
            table(["server", "keep-alive", "requests", "first byte p50 ms", "last byte p50 ms",
                   "first-to-last gap p50 ms", "answers with a gap > 30 ms"], rows),
            _explain(cmp, probe)]
    return "\n\n".join(parts)


def _explain(cmp: dict | None, probe: dict) -> str:
    """What the probe's figures show (the sentence depends on what was measured)."""
    s = probe["sockets"]
    two, one = _probe(probe, "mlflow-serve", True), _probe(probe, "mlflow-serve-1-worker", True)
    off, ours = _probe(probe, "mlflow-serve", False), _probe(probe, "caretflow-log-on", True)
    check = (f"checked in this run: the socket uvicorn binds has protocol number "
             f"{s['uvicorn_bind_socket_proto']}, and asyncio sets `TCP_NODELAY` only when it is "
             "`IPPROTO_TCP`; a connection accepted on it has `TCP_NODELAY` = "
             f"{s['nodelay_uvicorn_workers_socket']}, one accepted on a socket asyncio binds "
             f"itself (uvicorn with one worker) = {s['nodelay_asyncio_bound_socket']}")
    wrk = next((r for r in (cmp or {}).get("results", []) if r["server"] == "mlflow-serve"
                and r["model"] == probe["model"] and r["batch"] == 1 and r["connections"] == 1
                and r["tool"] == "wrk" and r["keepalive"]), None)
    held = two.get("gap_p50_ms", 0) > 30 and one.get("gap_p50_ms", 99) < 5
    if not held:
        return ("What the figures show: in this run the probe did not separate a held-back "
                f"body (gap p50 with 2 workers {two.get('gap_p50_ms')} ms, with 1 worker "
                f"{one.get('gap_p50_ms')} ms), so this run does not confirm the delayed-ACK "
                f"explanation ({check}).")
    return (
        "What the figures show: with keep-alive, `mlflow models serve` with 2 workers sends "
        f"an answer's headers at once and its body later (gap p50 {two['gap_p50_ms']} ms, "
        f"{100 * two['share_gap_over_30ms']:.0f} % of answers over 30 ms). uvicorn writes "
        "the headers and the body separately; with more than one worker it binds the "
        "listening socket itself, and the accepted connections lack `TCP_NODELAY` ("
        f"{check}). Nagle's algorithm then holds the body until the client acknowledges the "
        "headers, and the client delays that ACK (Linux: at least 40 ms, counted in timer "
        "ticks, hence the ~4 ms grid). The control shows it: with one worker the gap is "
        f"{one['gap_p50_ms']} ms; without keep-alive it is {off.get('gap_p50_ms')} ms, because "
        "closing the connection pushes the held segment out at once. So about "
        f"{two['gap_p50_ms']:.0f} ms of mlflow serve's "
        + (f"{wrk['p50_ms']} ms p50 at concurrency 1 under wrk with keep-alive " if wrk else
           "latency with keep-alive ")
        + "is the socket, not the model. caretflow (gap "
        f"{ours.get('gap_p50_ms')} ms): gunicorn sets `TCP_NODELAY` on its listening socket "
        "and its sync workers answer one request per connection, then close it, so keep-alive "
        "changes little for it. "
        + _ab_reuse(cmp)
        + " Which setting is fair: the headline uses, for both servers, the one under which "
        "mlflow serve did best at the highest concurrency (the ratio least flattering to "
        "caretflow); every other setting is in the cell table.")


def _ab_reuse(cmp: dict | None) -> str:
    cells = [r for r in (cmp or {}).get("results", []) if r["tool"] == "ab" and r["keepalive"]]
    if not cells:
        return ""
    reused = sum(r.get("reused") or 0 for r in cells)
    if reused == 0:
        return ("ab's `-k` offers HTTP/1.0 keep-alive, which neither server honours: 0 "
                f"requests on a kept-alive connection in all {len(cells)} `ab -k` cells, so "
                "ab measures a new connection per request either way.")
    return (f"ab's `-k` (HTTP/1.0 keep-alive) reused connections for {reused} requests over "
            f"{len(cells)} cells (the last column of the cell table).")
