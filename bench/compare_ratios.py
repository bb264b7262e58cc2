"""Ratios between the servers of ``bench/serve_compare.py`` and the fair client setting."""

from __future__ import annotations

BASE, BASELINE, LOG_OFF = "caretflow-log-on", "mlflow-serve", "caretflow-log-off"


def _key(row: dict) -> tuple:
    return row["model"], row["batch"], row["connections"], row["tool"], row["keepalive"]


def ratios(rows: list[dict], base: str = BASE, other: str = BASELINE) -> list[dict]:
    """``base`` / ``other`` per cell (same client, same keep-alive, same run)."""
    index = {(r["server"], *_key(r)): r for r in rows}
    out = []
    for r in rows:
        o = index.get((other, *_key(r)))
        if r["server"] != base or o is None:
            continue
        out.append({"model": r["model"], "batch": r["batch"], "connections": r["connections"],
                    "tool": r["tool"], "keepalive": r["keepalive"],
                    "rps_ratio": round(r["rps"] / o["rps"], 2) if o["rps"] else None,
                    "p50_ratio": round(r["p50_ms"] / o["p50_ms"], 3)
                    if r["p50_ms"] and o["p50_ms"] else None})
    return out


def headline(rows: list[dict], model: str = "churn") -> dict:
    """The client setting the headline uses: the one most favourable to ``mlflow models serve``.

    It is the (client, keep-alive) pair under which ``mlflow models serve`` has its highest
    req/s for one record at the highest concurrency measured; without an mlflow row, the
    first setting measured.
    """
    cells = [r for r in rows if r["model"] == model and r["batch"] == 1]
    if not cells:
        return {}
    top = max(r["connections"] for r in cells)
    mlflow = [r for r in cells if r["server"] == BASELINE and r["connections"] == top]
    best = max(mlflow, key=lambda r: r["rps"]) if mlflow else cells[0]
    return {"tool": best["tool"], "keepalive": best["keepalive"], "connections": top,
            "rule": "mlflow-serve's best" if mlflow else "first measured"}


def summarise(rows: list[dict]) -> dict:
    """``ratios`` (vs mlflow serve), ``log_cost`` (log on / off) and the ``headline`` setting."""
    return {"ratios": ratios(rows), "log_cost": ratios(rows, BASE, LOG_OFF),
            "headline": headline(rows)}
