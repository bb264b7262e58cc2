"""The monitoring report as one self-contained HTML page (PNGs embedded as base64).

Sections, each an element with its id: ``summary``, ``drift``, ``data-quality``,
``live-metrics``, ``estimated-metrics``, ``ab-test``, ``alerts``.
"""

from __future__ import annotations

import base64
import datetime as dt
from html import escape
from pathlib import Path

SECTIONS = ("summary", "drift", "data-quality", "live-metrics", "estimated-metrics", "ab-test",
            "alerts")
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1150px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:13px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
.flag{background:#fdd}.warn{background:#ffe9c4}.note{color:#555;font-size:13px}
img{max-width:100%;border:1px solid #eee;margin:.3em 0}h2{border-bottom:2px solid #ddd}"""


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return escape(str(value))


def table(header: list[str], rows: list[list], classes: list[str] | None = None) -> str:
    """An HTML table (cells formatted, escaped; optional CSS class per row)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        f"<tr class='{classes[i] if classes else ''}'>"
        + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for i, row in enumerate(rows))
    return f"<table><tr>{head}</tr>{body}</table>"


def image(path: Path | None, alt: str) -> str:
    """A PNG embedded as base64 (empty when the file is missing)."""
    if path is None or not Path(path).exists():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"<img alt='{escape(alt)}' title='{escape(Path(path).name)}' " \
           f"src='data:image/png;base64,{data}'>"


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _summary(rep: dict) -> str:
    rows = []
    for v, r in rep["versions"].items():
        flagged = [c for c, d in r["drift"].items() if d["flagged"]]
        rows.append([v, ", ".join(r.get("aliases", [])), r["rows"], r["labels"],
                     ", ".join(flagged) or "none", rep["primary"],
                     (r["live"].get(rep["primary"]) or {}).get("value"),
                     r["estimated"].get(rep["primary"])])
    ab = rep.get("ab")
    verdict = f"<p>A/B verdict: <b>{escape(ab['decision'])}</b></p>" if ab else ""
    return (f"<p>Model <b>{escape(rep['model'])}</b> ({escape(rep['task'])}), window "
            f"{_when(rep['since'])} to {_when(rep['until'])} ({rep['window_hours']} h).</p>"
            + table(["version", "aliases", "records", "labels", "drifted features",
                      "primary metric", "live", "estimated (all records)"], rows) + verdict)


def _drift(rep: dict) -> str:
    parts = []
    for v, r in rep["versions"].items():
        rows = [[c, d["psi"], d["test"], d["statistic"], d["p_value"], d["rows"],
                 "yes" if d["flagged"] else "no"] for c, d in r["drift"].items()]
        classes = ["flag" if d["flagged"] else "warn" if d["level"] != "ok" else ""
                   for d in r["drift"].values()]
        source = r.get("reference_source")
        parts.append(f"<h3>Version {escape(v)}</h3>" + (
            f"<p class='note'>Reference: {escape(source)}.</p>" if source else "") + table(
            ["feature", "PSI", "test", "statistic", "p-value", "records", "flagged"],
            rows, classes) + image(r.get("figures", {}).get("drift"), f"drift v{v}"))
        pd_ = r.get("prediction_drift")
        if pd_:
            parts.append(f"<p>Prediction drift against {escape(pd_['reference'])}: PSI "
                         f"{pd_['psi']:.4f}, KS p-value {pd_['p_value']:.3g}, flagged "
                         f"{'yes' if pd_['flagged'] else 'no'}.</p>"
                         + image(r.get("figures", {}).get("predictions"), f"outputs v{v}"))
        else:
            parts.append("<p class='note'>No prediction reference: the version's held-out "
                         "split could not be read and it has no earlier day of traffic.</p>")
    return "".join(parts) + (
        "<p class='note'>Flagged: the test rejects at 5 % after a Bonferroni correction over "
        "the features, and PSI is at least 0.1.</p>")


def _quality(rep: dict) -> str:
    q = rep.get("quality")
    if q is None:
        return "<p>The prediction database holds no rejections table.</p>"
    head = (f"<p>{q['records']} records in {q['requests']} requests rejected at validation "
            "(422 against the serving contract; a batch with one bad record is rejected "
            "whole).</p>")
    if not q["by_reason"]:
        return head
    rows = [[d["field"], d["reason"], d["rows"], d["requests"]] for d in q["by_reason"]]
    return (head + table(["field", "reason", "records", "requests"], rows)
            + image(rep.get("figures", {}).get("quality"), "rejections by field")
            + "<p class='note'>Counts only: the server never stores a rejected value.</p>")


def _live(rep: dict) -> str:
    parts = []
    for v, r in rep["versions"].items():
        if not r["live"]:
            parts.append(f"<h3>Version {escape(v)}</h3><p>No labels in the window.</p>")
            continue
        rows = [[m, x["value"], x.get("ci_low"), x.get("ci_high")] for m, x in r["live"].items()]
        parts.append(f"<h3>Version {escape(v)} ({r['labels']} labels)</h3>"
                     + table(["metric", "value", "95 % low", "95 % high"], rows)
                     + image(r.get("figures", {}).get("reliability"), f"reliability v{v}"))
    return "".join(parts)


def _estimated(rep: dict) -> str:
    parts = []
    for v, r in rep["versions"].items():
        rows = [[m, x, r["estimated_labelled"].get(m), (r["live"].get(m) or {}).get("value")]
                for m, x in r["estimated"].items()]
        parts.append(f"<h3>Version {escape(v)}: estimated</h3>"
                     f"<p class='note'>{escape(r['estimated_assumption'])}. On the labelled "
                     "records, estimated against live shows the estimate's error.</p>"
                     + table(["metric", f"estimated, all {r['rows']} records",
                               f"estimated, {r['labels']} labelled", "live"], rows)
                     + image(r.get("figures", {}).get("over_time"), f"over time v{v}"))
    return "".join(parts)


def _ab(rep: dict) -> str:
    ab = rep.get("ab")
    if not ab:
        return f"<p>{escape(rep.get('ab_note', 'No A/B test in the window.'))}</p>"
    rows = []
    for arm in ("champion", "challenger"):
        for m, x in ab[arm]["metrics"].items():
            rows.append([f"{arm} v{ab[arm]['version']}", m, ab[arm]["labels"],
                         *((x["value"], x["ci_low"], x["ci_high"]) if x else (None,) * 3)])
    d = ab.get("difference") or {}
    diff = (f"<p>{escape(ab['metric'])} difference (challenger − champion) "
            f"{d['value']:+.4f}, always-valid interval {d['ci_low']:+.4f} to "
            f"{d['ci_high']:+.4f}, p={d['p_value']:.3g}; needed per arm "
            f"{ab['needed_per_arm']}.</p>") if d else ""
    return (f"<p>Decision: <b>{escape(ab['decision'])}</b> ({escape(ab['method'])}).</p>"
            + diff + table(["arm", "metric", "labels", "value", "95 % low", "95 % high"], rows)
            + image(rep.get("figures", {}).get("ab"), "A/B arms"))


def _alerts(rep: dict) -> str:
    alerts = rep.get("alerts")
    if alerts is None:
        return "<p>The prediction database holds no alerts table.</p>"
    if not alerts:
        return "<p>No alerts in the window.</p>"
    return table(["when", "kind", "version", "status", "text"],
                  [[_when(a["created_at"]), a["kind"], a["model_version"], a["status"],
                    a["text"]] for a in alerts])


def render(rep: dict) -> str:
    """The HTML page of a monitoring report (``steps.monitor.monitor``'s result)."""
    titles = {"summary": "Summary", "drift": "Drift", "data-quality": "Data quality",
              "live-metrics": "Live metrics",
              "estimated-metrics": "Estimated metrics", "ab-test": "A/B test",
              "alerts": "Alerts"}
    body = {"summary": _summary, "drift": _drift, "data-quality": _quality, "live-metrics": _live,
            "estimated-metrics": _estimated, "ab-test": _ab, "alerts": _alerts}
    sections = "".join(f"<section id='{s}'><h2>{titles[s]}</h2>{body[s](rep)}</section>"
                       for s in SECTIONS)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>caretflow monitor: "
            f"{escape(rep['model'])}</title><style>{STYLE}</style></head><body>"
            f"<h1>Monitoring {escape(rep['model'])}</h1>{sections}</body></html>")
