"""``POST /predict`` and ``POST /recommend``."""

from __future__ import annotations

from flask import Blueprint

from app import predicting
from app.auth import requires
from app.errors import ApiError
from app.schemas import validate
from app.state import json_body, json_response, state

bp = Blueprint("predict", __name__)
MAX_ITEMS = 1000


def _too_many(n: int, cap: int, what: str) -> None:
    if n > cap:
        raise ApiError(413, f"too many {what}: {n} > {cap}", [f"send at most {cap} {what}"])


@bp.post("/predict")
@requires("client")
def predict():
    """One flat record, or ``{"records": [...]}``; optional version_name / A/B / true_value."""
    st, body = state(), json_body()
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object",
                       [{"field": "body", "message": "expected an object", "type": "dict_type"}])
    if "records" in body:
        if isinstance(body["records"], list):
            _too_many(len(body["records"]), st.settings.MAX_BATCH, "records")
        req = validate(st.requests.batch, body)
        records = req.records
    else:
        req = validate(st.requests.single, body)
        records = [req]
    answers = predicting.predict(st, records, req.version_name, req.enable_ab_testing)
    return json_response({"predictions": answers} if "records" in body else answers[0])


@bp.post("/recommend")
@requires("client")
def recommend():
    """Top-k of candidate ``items`` for one user (ratings-like regression models)."""
    st, body = state(), json_body()
    if st.task != "regression":
        raise ApiError(404, f"recommend is not supported for {st.task} models",
                       ["use /predict"])
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise ApiError(422, "invalid request", [{"field": "items", "type": "list_type",
                                                 "message": "a list of candidate items"}])
    _too_many(len(body["items"]), MAX_ITEMS, "items")
    k = body.get("k", 10)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_ITEMS:
        raise ApiError(422, "invalid request", [{"field": "k", "type": "int_range",
                                                 "message": f"an integer in 1..{MAX_ITEMS}"}])
    user = {key: v for key, v in body.items() if key not in ("items", "k", "version_name")}
    records = [validate(st.requests.record, {**user, **(item if isinstance(item, dict) else {})},
                        ("items", i)) for i, item in enumerate(body["items"])]
    if not records:
        raise ApiError(422, "invalid request", [{"field": "items", "type": "too_short",
                                                 "message": "at least one item"}])
    version_name = body.get("version_name")
    answers = predicting.predict(st, records, str(version_name) if version_name else None, False)
    ranked = sorted(zip(answers, body["items"], strict=True), key=lambda p: -p[0]["prediction"])
    return json_response({"recommendations": [{**item, **ans} for ans, item in ranked[:k]]})
