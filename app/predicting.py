"""Choosing the version and arm per record, predicting in groups, and logging every answer.

Everything works on columns (``app.batchcheck.Batch``): one vectorised model call per
version and arm, answers and prediction-log rows built from whole columns, and the rows
written in one statement.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import numpy as np
import orjson

from app import predictlog, telemetry
from app.batchcheck import Batch
from app.errors import ApiError
from app.models import LoadError, Served
from app.state import State


def bucket(key: str) -> float:
    """A stable number in [0, 1) for a routing key (same key, same arm, on every worker)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64


def new_ids(n: int) -> list[str]:
    """``n`` prediction ids: 32 hex digits, 48 bits of milliseconds then 80 random bits.

    Time first, so the log's primary key grows at its end (random keys make every insert
    touch a random page of an ever larger index); 80 random bits keep ids unguessable.
    """
    prefix = f"{time.time_ns() // 1_000_000 & 0xFFFFFFFFFFFF:012x}"
    raw = secrets.token_hex(10 * n)
    return [prefix + raw[i:i + 20] for i in range(0, 20 * n, 20)]


def pick_version(st: State, version_name: str | None) -> Served | None:
    """The explicitly requested version (404 unknown, 503 unloadable), or None for routing."""
    if version_name is None:
        return None
    version = st.store.resolve(version_name)
    if version is None:
        raise ApiError(404, f"unknown version_name '{version_name}'",
                       ["use an alias such as v2_random_forest or a version number"])
    try:
        return st.store.get(version)
    except LoadError:
        raise ApiError(503, f"version '{version_name}' cannot be loaded",
                       ["see /health for the reason"]) from None


def route(st: State, keys: list[str], explicit: Served | None, ab: bool) -> list[tuple]:
    """``(served, arm, indices)`` groups; ``keys`` are the records' routing keys.

    ``indices`` is None when the group holds every record (no copy needed).
    """
    if explicit is not None:
        return [(explicit, "default", None)]
    default, challenger = st.store.default, st.store.challenger
    if default is None:
        raise ApiError(503, "no model loaded yet", ["see /health"])
    if not ab:
        return [(default, "default", None)]
    if challenger is None:
        return [(default, "champion", None)]
    share = st.settings.AB_WEIGHTS[0]
    to_challenger = np.array([bucket(k) >= share for k in keys], dtype=bool)
    groups = [(default, "champion", np.flatnonzero(~to_challenger)),
              (challenger, "challenger", np.flatnonzero(to_challenger))]
    return [g for g in groups if g[2].size]


def _texts(values: list) -> list:
    return [None if v is None else str(v) for v in values]


def _score(st: State, served: Served, arm: str, features: dict[str, np.ndarray]) -> dict:
    """The model's outputs as lists (``prediction`` plus probability or bounds)."""
    start = time.perf_counter()
    details = served.model.predict_details(features)
    n = len(details["prediction"])
    tel = telemetry.get()
    tel.predict_latency.labels(served.version, arm).observe(time.perf_counter() - start)
    tel.predictions.labels(served.version, arm).inc(n)
    out = {k: np.asarray(v).tolist() for k, v in details.items()}
    if st.task == "classification":
        out["prediction"] = [int(p) for p in out["prediction"]]
    return out


def _answers(st: State, served: Served, arm: str, ids: list[str], out: dict) -> list[dict]:
    head = (served.version, served.version_name, arm)
    if st.task == "classification":
        threshold = float(served.model.threshold)
        return [{"prediction": p, "prediction_id": i, "model_version": head[0],
                 "version_name": head[1], "arm": head[2], "probability": q,
                 "threshold": threshold}
                for p, i, q in zip(out["prediction"], ids, out["probability"], strict=True)]
    level = float(served.model.interval_level)
    return [{"prediction": p, "prediction_id": i, "model_version": head[0],
             "version_name": head[1], "arm": head[2],
             "interval": {"lower": lo, "upper": hi, "level": level}}
            for p, i, lo, hi in zip(out["prediction"], ids, out["lower"], out["upper"],
                                    strict=True)]


def log_columns(st: State, served: Served, arm: str, ids: list[str], inputs: list[str],
                out: dict, routing: list | None = None, parents: list | None = None) -> dict:
    """Prediction-log columns for one scored group (constants as one value)."""
    cols = {"id": ids, "created_at": time.time(), "model_name": st.store.name,
            "model_version": served.version, "version_name": served.version_name,
            "arm": arm, "inputs": inputs, "prediction": out["prediction"]}
    for key in ("probability", "lower", "upper"):
        if key in out:
            cols[key] = out[key]
    if routing is not None:
        cols["routing_key"] = routing
    if parents is not None:
        cols["parent_id"] = parents
    return cols


def stored_inputs(columns: dict[str, list], names: list[str]) -> list[str]:
    """Each record's features as JSON text (the log stores no personal data)."""
    cols = [columns[name] for name in names]
    return [orjson.dumps(dict(zip(names, row, strict=True))).decode()
            for row in zip(*cols, strict=True)]


def _take(values: list, indices) -> list:
    return values if indices is None else [values[i] for i in indices]


def predict(st: State, batch: Batch) -> list[dict]:
    """Answer every record of ``batch`` (one model call per version and arm), logged first.

    Args:
        st: the app state.
        batch: the validated records.

    Returns:
        One answer per record, in order.
    """
    n, names, key = batch.size, st.requests.features, st.requests.routing_key
    ids = new_ids(n)
    routing = _texts(batch.columns[key]) if key in batch.columns else None
    keys = ids if routing is None else [r or i for r, i in zip(routing, ids, strict=True)]
    groups = route(st, keys, pick_version(st, batch.version_name), batch.enable_ab_testing)
    inputs = stored_inputs(batch.columns, names) if st.settings.PREDICTION_LOG else [""] * n
    arrays = {name: np.asarray(batch.columns[name]) for name in names}
    answers: list = [None] * n
    logged = []
    for served, arm, idx in groups:
        features = arrays if idx is None else {k: v[idx] for k, v in arrays.items()}
        group_ids, group_inputs = _take(ids, idx), _take(inputs, idx)
        group_routing = None if routing is None else _take(routing, idx)
        out = _score(st, served, arm, features)
        group = _answers(st, served, arm, group_ids, out)
        if idx is None:
            answers = group
        else:
            for i, answer in zip(idx.tolist(), group, strict=True):
                answers[i] = answer
        logged.append(log_columns(st, served, arm, group_ids, group_inputs, out, group_routing))
        logged += _shadow(st, served, features, group_ids, group_inputs, group_routing)
    truths = _truths(batch, answers)
    if st.settings.PREDICTION_LOG:
        predictlog.write(st.engine, logged, truths)
    return answers


def _truths(batch: Batch, answers: list[dict]) -> list[dict]:
    """Inline feedback rows (``true_value`` sent with the record)."""
    now, rows = time.time(), []
    for truth, answer in zip(batch.true_values, answers, strict=True):
        if truth is not None:
            rows.append({"prediction_id": answer["prediction_id"], "true_value": truth,
                         "created_at": now, "source": "inline"})
            telemetry.get().feedback.labels(answer["model_version"], "inline").inc()
    return rows


def _shadow(st: State, served: Served, features: dict, parents: list[str], inputs: list[str],
            routing: list | None) -> list[dict]:
    """Shadow mode: the challenger scores the same records; logged, never answered."""
    shadow = st.store.challenger
    if not st.settings.SHADOW_MODE or shadow is None or shadow.version == served.version:
        return []
    out = _score(st, shadow, "shadow", features)
    return [log_columns(st, shadow, "shadow", new_ids(len(parents)), inputs, out, routing,
                        parents)]
