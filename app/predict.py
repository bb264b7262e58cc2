"""``POST /predict`` (``POST /recommend`` lives in ``app.recommend``)."""

from __future__ import annotations

from flask import Blueprint

from app import predicting
from app.auth import requires
from app.batchcheck import BatchChecker
from app.errors import ApiError
from app.schemas import validate
from app.state import json_body, json_response, state

bp = Blueprint("predict", __name__)


def _too_many(n: int, cap: int, what: str) -> None:
    if n > cap:
        raise ApiError(413, f"too many {what}: {n} > {cap}", [f"send at most {cap} {what}"])


def _checker(st) -> BatchChecker:
    """The app's column-wise batch validator (pydantic explains what it does not accept)."""
    if "batch_checker" not in st.cache:
        st.cache["batch_checker"] = BatchChecker(st.dataset["schema"], st.dataset)
    return st.cache["batch_checker"]


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
        req = _checker(st).check(body) or validate(st.requests.batch, body)
        records = req.records
    else:
        req = validate(st.requests.single, body)
        records = [req]
    answers = predicting.predict(st, records, req.version_name, req.enable_ab_testing)
    return json_response({"predictions": answers} if "records" in body else answers[0])
