"""Predicting in groups (version and arm per record: ``app.routing``), logging every answer.

Everything works on columns (``app.batchcheck.Batch``): one vectorised model call per
version and arm, answers built from whole columns, and one prediction-log row per version
and arm, all written in one transaction.
"""

from __future__ import annotations

import time

import numpy as np
import orjson

from app import logs, telemetry
from app.batchcheck import Batch
from app.contracts import check_outputs, interval_level, threshold
from app.errors import ApiError
from app.model_store import Served
from app.prediction_log import db
from app.prediction_log.queries import score_at
from app.routing import pick_version, route
from app.state import State
from caretflow.inference.contract import ContractError
from caretflow.inference.ranking import cold_start


def _texts(values: list) -> list:
    return [None if v is None else str(v) for v in values]


def _outputs(served: Served, features: dict[str, np.ndarray], n: int) -> dict:
    """The model's ``predict_details``, plus ``cold_start`` for a recommender contract.

    Raises:
        ContractError: an output the contract calls for is missing or not one per row, or
            a recommender model cannot say which rows are cold (no catalogue, no user or
            item column).
    """
    details = served.model.predict_details(features)
    check_outputs(served.contract, details, n)
    if not served.contract.get("recommender"):
        return details
    catalogue = getattr(served.model, "catalogue", None)
    if catalogue is None:
        raise ContractError("a recommender model must carry its catalogue to flag cold_start")
    try:
        cold = cold_start(catalogue, features)
    except ValueError as exc:  # the contract's user and item columns are not features
        raise ContractError(str(exc)) from None
    return {**details, "cold_start": cold}


def _score(served: Served, arm: str, features: dict[str, np.ndarray]) -> dict:
    """The model's outputs as lists (``prediction``, probability or bounds, ``cold_start``).

    ``cold_start`` only when the contract names users and items (``_outputs``). Outputs
    that do not match the version's contract answer 503 (nothing is stored).
    """
    n = len(next(iter(features.values())))
    start = time.perf_counter()
    try:
        details = _outputs(served, features, n)
    except ContractError as exc:
        raise ApiError(503, f"version {served.version} ({served.version_name}) answered "
                       "outside its contract; nothing was stored", [str(exc)]) from None
    tel = telemetry.get()
    telemetry.child(tel.predict_latency, served.version, arm).observe(
        time.perf_counter() - start)
    telemetry.child(tel.predictions, served.version, arm).inc(n)
    arrays = {k: np.asarray(v) for k, v in details.items()}
    if served.contract["task"] == "classification":  # class labels as ints, not floats
        arrays["prediction"] = arrays["prediction"].astype(np.int64)
    return {k: v.tolist() for k, v in arrays.items()}


def _answers(served: Served, arm: str, ids: list[str], out: dict) -> list[dict]:
    """One answer per record: a copy of the group's common fields with its own ones set."""
    contract = served.contract
    common = {"prediction": None, "prediction_id": None, "model_version": served.version,
              "version_name": served.version_name, "arm": arm}
    if contract["task"] == "classification":
        common.update(probability=None, threshold=threshold(contract))
        second, seconds = "probability", out["probability"]
    else:
        level = interval_level(contract)
        second, seconds = "interval", [{"lower": lo, "upper": hi, "level": level}
                                       for lo, hi in zip(out["lower"], out["upper"],
                                                         strict=True)]
    answers = []
    for p, i, v in zip(out["prediction"], ids, seconds, strict=True):
        answer = common.copy()
        answer["prediction"], answer["prediction_id"], answer[second] = p, i, v
        answers.append(answer)
    if "cold_start" in out:
        for answer, cold in zip(answers, out["cold_start"], strict=True):
            answer["cold_start"] = cold
    return answers


def group_row(st: State, served: Served, arm: str, request_id: str, positions: list | None,
              inputs: dict[str, list], out: dict, routing: list | None = None) -> dict:
    """The ``prediction_groups`` row of one scored group (columns stored as JSON).

    Args:
        st: the app state.
        served: the version that scored the group.
        arm: its arm.
        request_id: the request's id.
        positions: the group's record positions in the request; None for all of them.
        inputs: the group's features as columns (no personal data).
        out: the model's outputs as columns (``_score``).
        routing: the group's routing keys, if the data set has them.
    """
    return {"request_id": request_id, "arm": arm, "created_at": time.time(),
            "model_name": st.store.name, "model_version": served.version,
            "version_name": served.version_name, "size": len(out["prediction"]),
            "positions": None if positions is None else orjson.dumps(positions).decode(),
            "routing": None if routing is None else orjson.dumps(routing).decode(),
            "inputs": orjson.dumps(inputs).decode(), "outputs": orjson.dumps(out).decode()}


def _take(values: list, positions: list | None) -> list:
    return values if positions is None else [values[i] for i in positions]


def predict(st: State, batch: Batch) -> list[dict]:
    """Answer every record of ``batch`` (one model call per version and arm), logged first.

    Args:
        st: the app state.
        batch: the validated records.

    Returns:
        One answer per record, in order.
    """
    return _scored(st, batch, answers=True)


def predictions(st: State, batch: Batch) -> list:
    """The ``prediction`` of every answer of ``predict``, scored and logged the same way.

    What ``/invocations`` answers: no per-record answer (nor prediction id, unless routing
    or inline feedback needs them) is built.
    """
    return _scored(st, batch, answers=False)


def _scored(st: State, batch: Batch, answers: bool) -> list:
    n, names, key = batch.size, st.requests.features, st.requests.routing_key
    request_id = logs.request_id()  # the HTTP request's id (X-Request-Id)
    truths = None if batch.true_values.count(None) == n else batch.true_values
    ab = batch.enable_ab_testing
    need_ids = answers or ab or truths is not None
    ids = db.prediction_ids(request_id, range(n)) if need_ids else None
    routing = _texts(batch.columns[key]) if key in batch.columns else None
    keys = None
    if ab:
        keys = ids if routing is None else [r or i for r, i in zip(routing, ids, strict=True)]
    groups = route(st, keys, pick_version(st, batch.version_name), ab)
    arrays = {name: batch.array(name) for name in names}
    result: list = [None] * n
    logged, label_rows, feedback = [], [], []
    for served, arm, idx in groups:
        positions = None if idx is None else idx.tolist()
        features = arrays if idx is None else {k: v[idx] for k, v in arrays.items()}
        group_ids = None if ids is None else _take(ids, positions)
        out = _score(served, arm, features)
        group = _answers(served, arm, group_ids, out) if answers else out["prediction"]
        if positions is None:
            result = group
        else:
            for i, answer in zip(positions, group, strict=True):
                result[i] = answer
        scored = [(served, arm, out), *_shadow(st, served, features)]
        if truths is not None:
            group_truths = _take(truths, positions)
            feedback.append((served.version, sum(t is not None for t in group_truths)))
        if not st.settings.PREDICTION_LOG:
            continue
        inputs = {k: _take(batch.columns[k], positions) for k in names}
        group_routing = None if routing is None else _take(routing, positions)
        for s, a, o in scored:
            logged.append(group_row(st, s, a, request_id, positions, inputs, o, group_routing))
            if truths is not None:
                label_rows += _labels(st, s, a, group_ids, o, group_truths)
    counter = telemetry.get().feedback
    for version, count in feedback:  # inline feedback counted once every group answered
        if count:
            counter.labels(version, "inline").inc(count)
    if st.settings.PREDICTION_LOG:
        db.write(st.engine, logged, label_rows)
    return result


def _labels(st: State, served: Served, arm: str, ids: list[str], out: dict,
            truths: list) -> list[dict]:
    """Inline feedback (``true_value`` sent with the record) as ``labels`` rows."""
    now, rows = time.time(), []
    for k, truth in enumerate(truths):
        if truth is not None:
            rows.append({"prediction_id": ids[k], "true_value": truth, "created_at": now,
                         "source": "inline",
                         **score_at(arm, st.store.name, served.version, out, k)})
    return rows


def _shadow(st: State, served: Served, features: dict) -> list[tuple]:
    """Shadow mode: the challenger scores the same records; logged, never answered."""
    shadow = st.store.challenger
    if not st.settings.SHADOW_MODE or shadow is None or shadow.version == served.version:
        return []
    return [(shadow, "shadow", _score(shadow, "shadow", features))]
