"""What ``GET /model_health`` reports: live metrics against the gate, status, drift, coverage.

Pure functions of the serving contract, the prediction database and the model store: the
gate, the feedback minimum and the default window come from the contract, never from
``conf/``.
"""

from __future__ import annotations

import logging
import time

from app.contracts import interval_level
from app.live_metrics import TASK_METRICS, compute
from app.model_store import LoadError, ModelStore
from app.prediction_log import queries
from app.registry_calls import RegistryUnavailable
from caretflow.drift import psi
from caretflow.metrics import passes_gate

log = logging.getLogger(__name__)
PSI_WARN, PSI_DRIFT = 0.1, 0.25
DRIFT_MIN_ROWS = 50  # fewer recent inputs than this: PSI is shown but not judged


def _level(value: float) -> str:
    return "drift" if value >= PSI_DRIFT else "warn" if value >= PSI_WARN else "ok"


def drift(engine, store: ModelStore, version: str, since: float) -> dict:
    """PSI per input feature of recent inputs against the model's training reference."""
    inputs = queries.recent_inputs(engine, store.name, version, since)
    try:
        reference = store.get(version).model.reference or {}
    except (LoadError, RegistryUnavailable):
        return {"status": "unavailable", "features": {}}
    rows = max((len(v) for v in inputs.values()), default=0)
    if not rows:
        return {"status": "no_data", "features": {}, "rows": 0}
    out = {}
    for col, ref in reference.items():
        value = psi(ref, [v for v in inputs.get(col, ()) if v is not None])
        out[col] = {"psi": round(value, 4), "status": _level(value)}
    worst = max((f["psi"] for f in out.values()), default=0.0)
    return {"status": _level(worst) if rows >= DRIFT_MIN_ROWS else "insufficient_data",
            "rows": rows, "thresholds": {"warn": PSI_WARN, "drift": PSI_DRIFT},
            "features": out}


def interval(contract: dict, values: dict) -> dict | None:
    """Regression: live share of true values inside the logged interval vs its nominal level."""
    if contract["task"] != "regression":
        return None
    level, coverage = interval_level(contract), values.get("interval_coverage")
    return {"level": level, "live_coverage": coverage,
            "gap": None if coverage is None or level is None else round(coverage - level, 4)}


def status(n_feedback: int, minimum: int, ok: bool) -> str:
    """``insufficient_data`` below the feedback minimum, else ``healthy`` or ``degraded``."""
    return "insufficient_data" if n_feedback < minimum else "healthy" if ok else "degraded"


def version_contract(store: ModelStore, version: str, serving: dict) -> dict:
    """The contract a version scored by; the serving one when its own cannot be read."""
    try:
        return store.contract_of(version) or serving
    except Exception:  # noqa: BLE001 - registry down: the name's contract is the same
        return serving


def report(contract: dict, engine, store: ModelStore, hours: float) -> dict:
    """Per version over the last ``hours``: live metrics vs the gate, status, input drift.

    Args:
        contract: the serving version's contract (gate and feedback minimum).
        engine: the prediction database.
        store: the model store.
        hours: the window.

    Returns:
        The /model_health body.
    """
    since = time.time() - hours * 3600
    task = contract["task"]
    gate = {k: v for k, v in contract["gate"].items() if k in TASK_METRICS[task]}
    minimum = int(contract["health"]["min_feedback"])
    counts = queries.prediction_counts(engine, store.name, since)
    serving = {v for v in (getattr(store.default, "version", None),
                           getattr(store.challenger, "version", None)) if v}
    out = []
    for version in sorted(set(counts) | serving, key=int):
        own = version_contract(store, version, contract)
        rows = queries.labelled(engine, store.name, version, since)
        values = compute(own, rows)
        ok, failures = passes_gate(values, gate)
        judged = status(len(rows), minimum, ok)
        if judged == "degraded":
            log.warning("%s version %s degraded over %sh: %s", store.name, version, hours,
                        "; ".join(failures))
        out.append({"version": version, "status": judged,
                    "predictions": counts.get(version, 0), "feedback": len(rows),
                    "min_feedback": minimum,
                    "live_metrics": {f"live_{k}": v for k, v in values.items()},
                    "thresholds": gate, "failures": failures if judged == "degraded" else [],
                    "interval": interval(own, values),
                    "drift": drift(engine, store, version, since)})
    return {"model_name": store.name, "window_hours": hours, "versions": out}
