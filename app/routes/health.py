"""``GET /health``, ``GET /model_health`` and ``GET /metrics``."""

from __future__ import annotations

import logging
import os
import time

from flask import Blueprint, Response, request

from app import telemetry
from app.auth import requires
from app.errors import ApiError
from app.http import json_response
from app.live_metrics import TASK_METRICS, compute
from app.model_store import LoadError
from app.prediction_log import queries
from app.state import state
from caretflow.drift import psi
from caretflow.metrics import passes_gate

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)
PSI_WARN, PSI_DRIFT = 0.1, 0.25
DRIFT_MIN_ROWS = 50  # fewer recent inputs than this: PSI is shown but not judged


@bp.get("/health")
def health():
    """Liveness and readiness: 200 when a model serves, 503 until then."""
    st = state()
    status = st.store.status()
    ready = st.store.ready
    reachable = status["registry_error"] is None and st.store.last_refresh is not None
    body = {"status": ("ok" if reachable else "degraded") if ready else "not_ready",
            "ready": ready, "registry_reachable": reachable, "worker_pid": os.getpid(),
            **status}
    return json_response(body, 200 if ready else 503)


@bp.get("/metrics")
def metrics():
    """Prometheus exposition."""
    data, content_type = telemetry.exposition()
    return Response(data, content_type=content_type)


def _window_hours(st) -> float:
    raw = request.args.get("window_hours")
    default = st.settings.HEALTH_WINDOW_HOURS or st.dataset["health"]["window_hours"]
    try:
        hours = float(raw) if raw is not None else float(default)
    except ValueError:
        hours = -1.0
    if not 0 < hours <= 24 * 365:
        raise ApiError(422, "window_hours must be a number in (0, 8760]")
    return hours


def drift(st, version: str, since: float) -> dict:
    """PSI per input feature of recent inputs against the model's training reference."""
    inputs = queries.recent_inputs(st.engine, st.store.name, version, since)
    try:
        reference = st.store.get(version).model.reference or {}
    except LoadError:
        return {"status": "unavailable", "features": {}}
    rows = max((len(v) for v in inputs.values()), default=0)
    if not rows:
        return {"status": "no_data", "features": {}, "rows": 0}
    out = {}
    for col, ref in reference.items():
        value = psi(ref, [v for v in inputs.get(col, ()) if v is not None])
        out[col] = {"psi": round(value, 4),
                    "status": "drift" if value >= PSI_DRIFT else
                    "warn" if value >= PSI_WARN else "ok"}
    worst = max((f["psi"] for f in out.values()), default=0.0)
    status = "drift" if worst >= PSI_DRIFT else "warn" if worst >= PSI_WARN else "ok"
    return {"status": status if rows >= DRIFT_MIN_ROWS else "insufficient_data",
            "rows": rows, "thresholds": {"warn": PSI_WARN, "drift": PSI_DRIFT},
            "features": out}


def interval(st, version: str, values: dict) -> dict | None:
    """Regression: live share of true values inside the logged interval vs its nominal level."""
    if st.task != "regression":
        return None
    try:
        level = st.store.get(version).model.interval_level
    except LoadError:
        level = None
    coverage = values.get("interval_coverage")
    return {"level": level, "live_coverage": coverage,
            "gap": None if coverage is None or level is None else round(coverage - level, 4)}


@bp.get("/model_health")
@requires("client")
def model_health():
    """Per version over the window: live metrics vs the gate, status, input drift."""
    st = state()
    hours = _window_hours(st)
    since = time.time() - hours * 3600
    gate = {k: v for k, v in st.dataset["gate"].items() if k in TASK_METRICS[st.task]}
    minimum = int(st.dataset["health"]["min_feedback"])
    counts = queries.prediction_counts(st.engine, st.store.name, since)
    serving = {v for v in (getattr(st.store.default, "version", None),
                           getattr(st.store.challenger, "version", None)) if v}
    out = []
    for version in sorted(set(counts) | serving, key=int):
        rows = queries.labelled(st.engine, st.store.name, version, since)
        values = compute(st.task, rows)
        ok, failures = passes_gate(values, gate)
        status = ("insufficient_data" if len(rows) < minimum else
                  "healthy" if ok else "degraded")
        if status == "degraded":
            log.warning("%s version %s degraded over %sh: %s", st.store.name, version, hours,
                        "; ".join(failures))
        out.append({"version": version, "status": status, "predictions": counts.get(version, 0),
                    "feedback": len(rows), "min_feedback": minimum,
                    "live_metrics": {f"live_{k}": v for k, v in values.items()},
                    "thresholds": gate, "failures": failures if status == "degraded" else [],
                    "interval": interval(st, version, values),
                    "drift": drift(st, version, since)})
    return json_response({"model_name": st.store.name, "window_hours": hours, "versions": out})
