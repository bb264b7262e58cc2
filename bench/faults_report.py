"""Render ``bench/results/reliability/*.json`` into the figures table of docs/reliability.md.

python -m bench.faults_report      # rewrites the part between the two markers
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "reliability"
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
log = logging.getLogger("bench.faults_report")


def _rows(r: dict) -> str:
    stored = r.get("rows_stored")
    if not stored:
        return "–"
    return (f"pred {r['predictions_acknowledged']}/{stored['distinct_keys']} "
            f"(rows {stored['predictions']}), fb {r['feedback_acknowledged']}/"
            f"{stored['feedback']}")


def _load_like(r: dict) -> tuple:
    return (r.get("requests", "–"), r.get("errors", "–"), r.get("p99_ms", "–"), _rows(r))


def _line(name: str, r: dict) -> str:
    """One table row: test, requests, errors, p99 ms, rows acked/stored, recovery, notes."""
    if name == "load":
        cells = (*_load_like(r), "–", f"{r['seconds']} s, {r['rate_per_s']} req/s, "
                 f"p50 {r['p50_ms']} ms")
    elif name == "sigkill":
        cells = (*_load_like(r), f"worker replaced {r['worker_replaced_s']} s",
                 f"{r['retried']} retried (cut by the kill)")
    elif name == "mlflow_outage":
        synced = "all live metrics arrived" if r["live_metrics_synced"] else "NOT synced"
        cells = (*_load_like(r), f"{r['live_metrics_synced_after_restart_s']} s after "
                 "restart", f"outage {r.get('outage_measured_s', r['outage_s'])} s; "
                 f"/health {r['health_during_outage']}; {synced}")
    elif name == "registry_start":
        cells = ("–", "–", "–", "–", f"ready {r['ready_after_return_s']} s after return",
                 f"while down: /health {r['status_while_down']}, /predict "
                 f"{r['predict_while_down']}")
    elif name == "scaleout":
        s, f, lim = r["switch"], r["feedback"], r["rate_limit"]
        cells = (lim["sent"], lim.get("server_errors", "–"), "–",
                 f"fb {f['feedback_sent']}/{f['feedback_recorded']}",
                 f"other instance serves after {s['other_instance_serves_after_s']} s",
                 f"limit {lim['limit']}: {lim['allowed']} allowed, {lim['limited_429']} × 429; "
                 f"live metric at step once: {f['live_metric_copies_at_step'] == 1}")
    elif name == "fuzz":
        five = sum(n for op in r["operations"].values() for code, n in op["statuses"].items()
                   if int(code) >= 500)
        cells = (r["cases"], five, "–", "–", "–",
                 f"{r['examples_per_operation']} examples/operation/mode, {r['seconds']} s")
    else:
        return ""
    return f"| `{name}` | " + " | ".join(str(c) for c in cells) + f" | {r.get('measured_at', '')} |"


def render() -> str:
    """The markdown table of every result file present."""
    head = ("| script | requests | errors | p99 ms | acknowledged/stored | recovery | notes | "
            "measured |\n|---|---|---|---|---|---|---|---|")
    lines = []
    for path in sorted(RESULTS.glob("*.json")):
        line = _line(path.stem, json.loads(path.read_text()))
        if line:
            lines.append(line)
    return "\n".join([head, *lines])


def main() -> None:
    """Rewrite the figures block of docs/reliability.md."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + "\n" + render() + "\n" + text[end:])
    log.info("updated %s", DOC.relative_to(ROOT))


if __name__ == "__main__":
    main()
