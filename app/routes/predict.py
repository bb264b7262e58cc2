"""``POST /predict`` (``POST /recommend`` lives in ``app.routes.recommend``)."""

from __future__ import annotations

import orjson
from flask import Blueprint

from app import lean, rejections, scoring
from app.api_models import PredictAnswer, predict_body
from app.auth import requires
from app.batchcheck import Batch, BatchChecker
from app.errors import ApiError, too_many
from app.http import json_body, json_response
from app.openapi import documented
from app.schemas import validate
from app.state import state

bp = Blueprint("predict", __name__)


def _checker(st) -> BatchChecker:
    """The serving contract's column-wise batch validator (pydantic explains the rest)."""
    return st.checker


def _from_pydantic(st, model, body: dict) -> Batch:
    """Validate with pydantic (a 422 explains every bad field) and hand over columns."""
    req = validate(model, body)
    records = req.records if hasattr(req, "records") else [req]
    return Batch.from_records(records, _checker(st).keep, req.version_name,
                              req.enable_ab_testing)


def _lean_answer(st, raw: bytes) -> dict | None:
    """``predict``'s answer to a ``records`` batch the column-wise checker accepts (``app.lean``).

    None, having done nothing, for anything else (one flat record, a malformed, too large or
    rejected body): ``predict`` answers that itself.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or len(records) > st.settings.MAX_BATCH:
        return None
    batch = _checker(st).check(body)
    return None if batch is None else {"predictions": scoring.predict(st, batch)}


@bp.post("/predict")
@requires("client")
@documented("Predict one record or a batch", body=predict_body, answer=PredictAnswer,
            errors=(404, 409, 503))
@lean.answers(_lean_answer)
def predict():
    """One flat record, or ``{"records": [...]}``; optional version_name / A/B / true_value."""
    st, body = state(), json_body()
    with rejections.recorded(st, body):
        if not isinstance(body, dict):
            raise ApiError(422, "the body must be a JSON object", [
                {"field": "body", "message": "expected an object", "type": "dict_type"}])
        if "records" in body:
            if isinstance(body["records"], list):
                too_many(len(body["records"]), st.settings.MAX_BATCH, "records")
            batch = _checker(st).check(body) or _from_pydantic(st, st.requests.batch, body)
        else:
            batch = _from_pydantic(st, st.requests.single, body)
    answers = scoring.predict(st, batch)
    return json_response({"predictions": answers} if "records" in body else answers[0])
