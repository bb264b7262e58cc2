"""Choosing the version and arm per record, predicting in groups, and logging every answer."""

from __future__ import annotations

import hashlib
import secrets
import time

import orjson

from app import predictlog, telemetry
from app.errors import ApiError
from app.models import LoadError, Served
from app.schemas import columns, routing_value, stored_inputs
from app.state import State


def bucket(key: str) -> float:
    """A stable number in [0, 1) for a routing key (same key, same arm, on every worker)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64


def new_ids(n: int) -> list[str]:
    """``n`` random 128-bit prediction ids as 32 hex digits (one entropy call per request)."""
    raw = secrets.token_hex(16 * n)
    return [raw[i:i + 32] for i in range(0, 32 * n, 32)]


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


def route(st: State, ids: list[str], records: list, explicit: Served | None, ab: bool) -> list:
    """(served, arm) for each record."""
    if explicit is not None:
        return [(explicit, "default")] * len(records)
    default, challenger = st.store.default, st.store.challenger
    if default is None:
        raise ApiError(503, "no model loaded yet", ["see /health"])
    if not ab:
        return [(default, "default")] * len(records)
    if challenger is None:
        return [(default, "champion")] * len(records)
    share = st.settings.AB_WEIGHTS[0]
    out = []
    for pid, rec in zip(ids, records, strict=True):
        key = routing_value(rec, st.requests.routing_key) or pid
        out.append((challenger, "challenger") if bucket(key) >= share else (default, "champion"))
    return out


def _answer(st: State, served: Served, arm: str, pid: str, details: dict, i: int) -> dict:
    out = {"prediction": None, "prediction_id": pid, "model_version": served.version,
           "version_name": served.version_name, "arm": arm}
    if st.task == "classification":
        out["prediction"] = int(details["prediction"][i])
        out["probability"] = float(details["probability"][i])
        out["threshold"] = float(served.model.threshold)
    else:
        out["prediction"] = float(details["prediction"][i])
        out["interval"] = {"lower": float(details["lower"][i]),
                           "upper": float(details["upper"][i]),
                           "level": float(served.model.interval_level)}
    return out


def _row(st: State, answer: dict, record, now: float, parent: str | None = None) -> dict:
    return {"id": answer["prediction_id"], "parent_id": parent, "created_at": now,
            "model_name": st.store.name, "model_version": answer["model_version"],
            "version_name": answer["version_name"], "arm": answer["arm"],
            "routing_key": routing_value(record, st.requests.routing_key),
            "inputs": orjson.dumps(stored_inputs(record, st.requests.features)).decode(),
            "prediction": answer["prediction"], "probability": answer.get("probability"),
            "lower": answer.get("interval", {}).get("lower"),
            "upper": answer.get("interval", {}).get("upper")}


def _score(st: State, served: Served, arm: str, records: list, ids: list[str]) -> list[dict]:
    start = time.perf_counter()
    details = served.model.predict_details(columns(records, st.requests.features))
    tel = telemetry.get()
    tel.predict_latency.labels(served.version, arm).observe(time.perf_counter() - start)
    tel.predictions.labels(served.version, arm).inc(len(records))
    details = {k: v.tolist() if hasattr(v, "tolist") else v for k, v in details.items()}
    return [_answer(st, served, arm, pid, details, i) for i, pid in enumerate(ids)]


def predict(st: State, records: list, version_name: str | None, ab: bool) -> list[dict]:
    """Answer ``records`` (one vectorised call per version and arm) and log them first.

    Args:
        st: the app state.
        records: validated records.
        version_name: explicit version (alias or number), or None.
        ab: route between champion and challenger.

    Returns:
        One answer per record, in order.
    """
    ids = new_ids(len(records))
    routes = route(st, ids, records, pick_version(st, version_name), ab)
    groups: dict[tuple, list[int]] = {}
    for i, (served, arm) in enumerate(routes):
        groups.setdefault((served.version, arm), []).append(i)
    answers: list = [None] * len(records)
    now, rows, truths = time.time(), [], []
    for indices in groups.values():
        served, arm = routes[indices[0]]
        recs = [records[i] for i in indices]
        for i, ans in zip(indices, _score(st, served, arm, recs, [ids[i] for i in indices]),
                          strict=True):
            answers[i] = ans
            rows.append(_row(st, ans, records[i], now))
        rows += _shadow_rows(st, served, recs, [ids[i] for i in indices], now)
    for rec, ans in zip(records, answers, strict=True):
        if rec.true_value is not None:
            truths.append({"prediction_id": ans["prediction_id"], "true_value": rec.true_value,
                           "created_at": now, "source": "inline"})
            telemetry.get().feedback.labels(ans["model_version"], "inline").inc()
    if st.settings.PREDICTION_LOG:
        predictlog.write(st.engine, rows, truths)
    return answers


def _shadow_rows(st: State, served: Served, records: list, parents: list[str],
                 now: float) -> list[dict]:
    """Shadow mode: the challenger scores the same records; logged, never answered."""
    shadow = st.store.challenger
    if not st.settings.SHADOW_MODE or shadow is None or shadow.version == served.version:
        return []
    ids = new_ids(len(records))
    answers = _score(st, shadow, "shadow", records, ids)
    return [_row(st, a, r, now, parent=p) for a, r, p in zip(answers, records, parents,
                                                             strict=True)]
