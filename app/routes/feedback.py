"""``POST /feedback``: true values for earlier predictions, by ``prediction_id``."""

from __future__ import annotations

import time

from flask import Blueprint

from app import telemetry
from app.api_models import FeedbackOut, feedback_body
from app.auth import requires
from app.errors import ApiError
from app.http import json_body, json_response
from app.openapi import documented
from app.prediction_log import db, queries
from app.schemas import validate
from app.state import state

bp = Blueprint("feedback", __name__)


@bp.post("/feedback")
@requires("client")
@documented("True values for earlier predictions", body=feedback_body, answer=FeedbackOut,
            status=201, errors=(404, 409))
def feedback():
    """``{"prediction_id": ..., "true_value": ...}`` or a list of them; all or nothing."""
    st, body = state(), json_body()
    single = isinstance(body, dict)
    items = [body] if single else body
    if not isinstance(items, list) or not items:
        raise ApiError(422, "send an object or a non-empty list of objects")
    if len(items) > st.settings.MAX_BATCH:
        raise ApiError(413, f"too many feedback items: {len(items)} > {st.settings.MAX_BATCH}")
    parsed = [validate(st.requests.feedback, item, () if single else (i,))
              for i, item in enumerate(items)]
    ids = [p.prediction_id for p in parsed]
    if len(set(ids)) != len(ids):
        raise ApiError(422, "the same prediction_id appears more than once")
    found, labelled = queries.find_predictions(st.engine, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise ApiError(404, "unknown prediction_id", [{"prediction_id": i} for i in missing[:20]])
    done = [i for i in ids if i in labelled]
    if done:
        raise ApiError(409, "feedback already recorded", [{"prediction_id": i} for i in done[:20]])
    now = time.time()
    rows = [{"prediction_id": p.prediction_id, **score, "true_value": float(p.true_value),
             "created_at": now, "source": "api"}
            for p in parsed for score in found[p.prediction_id]]
    if not db.add_labels(st.engine, rows):
        raise ApiError(409, "feedback already recorded")
    counter = telemetry.get().feedback
    answered = {i: found[i][0]["model_version"] for i in ids}
    for version in answered.values():
        counter.labels(version, "api").inc()
    recorded = [{"prediction_id": i, "model_version": answered[i]} for i in ids]
    return json_response({"recorded": len(ids), "feedback": recorded}, 201)
