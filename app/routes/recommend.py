"""``POST /recommend``: top-k catalogue items for one user, with predicted ratings and intervals.

The ranking is ``caretflow.inference.ranking.recommend`` over the item catalogue stored with
the serving model (nothing is refitted or looked up elsewhere). Every recommended item is
written to the prediction log like a ``/predict`` answer, so its ``prediction_id`` can receive
feedback.
"""

from __future__ import annotations

import copy
import time
from typing import Annotated

import numpy as np
from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, create_model

from app import logs, rejections, routing, scoring, telemetry
from app.api_models import recommend_body
from app.auth import requires
from app.errors import ApiError, too_many
from app.http import json_body, json_response
from app.model_store import Served
from app.openapi import documented
from app.prediction_log import db
from app.schemas import NAME, validate
from app.state import State, state
from caretflow.inference.ranking import recommend as rank

bp = Blueprint("recommend", __name__)
MAX_K = 1000
MAX_ITEMS = 1000


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _typed(record: type[BaseModel], column: str):
    """The request type of one schema column (same checks as in /predict)."""
    info = record.model_fields[column]
    return Annotated[(info.annotation, *info.metadata)]


def request_model(st: State) -> type[BaseModel]:
    """The pydantic model of a /recommend body for the serving contract (built once per one).

    Args:
        st: the app state; the serving contract must have a ``recommender`` section.

    Returns:
        Model with ``user_id``, ``k``, ``exclude_rated``, optional ``items`` (candidate item
        ids, or objects holding the item id), ``version_name`` and ``enable_ab_testing``.
    """
    record = st.requests.record

    def build(contract: dict) -> type[BaseModel]:
        rec = contract["recommender"]
        item = _typed(record, rec["item"])
        ref = create_model("ItemRef", __base__=_Loose, **{rec["item"]: (item, ...)})
        items = Annotated[list[item | ref], Field(min_length=1, max_length=MAX_ITEMS)]
        return create_model(
            "RecommendRequest", __base__=_Loose,
            user_id=(_typed(record, rec["user"]), ...),
            k=(Annotated[StrictInt, Field(ge=1, le=MAX_K)], 10),
            exclude_rated=(StrictBool, True),
            items=(items | None, None),
            version_name=(NAME | None, None),
            enable_ab_testing=(StrictBool, False))

    return st.cached("recommend_request", build)


def _candidates(model, wanted: list) -> tuple[object, list]:
    """A view of ``model`` whose catalogue holds only the ``wanted`` items; unknown ids."""
    cat = model.catalogue
    ids = cat["items"][cat["item"]]
    wanted = list(dict.fromkeys(wanted))
    mask = np.isin(ids, wanted)
    known = set(ids[mask].tolist())
    view = copy.copy(model)
    view.catalogue = {**cat, "items": {c: v[mask] for c, v in cat["items"].items()},
                      "item_prior": cat["item_prior"][mask]}
    return view, [i for i in wanted if i not in known]


def _inputs(st: State, cat: dict, user_id, item_ids: list) -> dict[str, list]:
    """The model inputs of each recommended (user, item) pair as columns, for the log."""
    users = cat["users"]
    row = np.flatnonzero(users[cat["user"]] == user_id)[:1]
    user = {c: v[row].tolist()[0] for c, v in users.items()} if row.size else {cat["user"]: user_id}
    items = {c: v.tolist() for c, v in cat["items"].items()}
    position = {v: i for i, v in enumerate(items[cat["item"]])}
    index = [position[i] for i in item_ids]
    columns = {}
    for name in st.requests.features:
        if name in items:
            columns[name] = [items[name][i] for i in index]
        else:
            columns[name] = [user.get(name)] * len(item_ids)
    return columns


def _log(st: State, served: Served, arm: str, answer: dict) -> None:
    """Give every recommended item a prediction id; store them when the log is on."""
    items = answer["items"]
    request_id = logs.request_id()
    ids = db.prediction_ids(request_id, range(len(items)))
    for item, pid in zip(items, ids, strict=True):
        item["prediction_id"] = pid
    if not (st.settings.PREDICTION_LOG and items):
        return
    columns = _inputs(st, served.model.catalogue, answer["user_id"],
                      [item["item_id"] for item in items])
    out = {"prediction": [item["predicted_rating"] for item in items],
           "lower": [item["interval"]["lower"] for item in items],
           "upper": [item["interval"]["upper"] for item in items]}
    routing = [str(answer["user_id"])] * len(items) if st.requests.routing_key else None
    db.write(st.engine, [scoring.group_row(st, served, arm, request_id, None,
                                                      columns, out, routing)], [])


def _serving(st: State, req) -> tuple[Served, str]:
    """The version (explicit, or default / A/B by user) and arm answering this request."""
    explicit = routing.pick_version(st, req.version_name)
    served, arm, _ = routing.route(st, [str(req.user_id)], explicit,
                                      req.enable_ab_testing)[0]
    if getattr(served.model, "catalogue", None) is None:
        raise ApiError(404, f"version {served.version} ({served.version_name}) has no item "
                       "catalogue: recommend is not supported", ["use /predict"])
    return served, arm


@bp.post("/recommend")
@requires("client")
@documented("Top-k items for a user (recommender models)", body=recommend_body,
            errors=(404, 409, 503))
def recommend():
    """Top-k catalogue items for ``user_id`` (cold start by item priors for unknown users)."""
    st, body = state(), json_body()
    contract = st.contract
    if not contract.get("recommender"):
        raise ApiError(404, f"recommend is not supported for {st.store.name} models "
                       "(no users x items)", ["use /predict"])
    items = body.get("items") if isinstance(body, dict) else None
    if isinstance(items, list):
        too_many(len(items), MAX_ITEMS, "items")
    with rejections.recorded(st, body):  # a 422 is recorded by field and reason
        req = validate(request_model(st), body)
    served, arm = _serving(st, req)
    model, unknown = served.model, []
    if req.items is not None:
        item_col = contract["recommender"]["item"]
        wanted = [i if not isinstance(i, BaseModel) else getattr(i, item_col) for i in req.items]
        model, unknown = _candidates(model, wanted)
    n_items = len(model.catalogue["item_prior"])
    if not n_items:  # nothing to rank (the model would be asked for zero rows)
        with rejections.recorded(st, body):
            raise ApiError(422, "none of the items is in the catalogue of version "
                           f"{served.version} ({served.version_name})",
                           [{"field": "items", "message": f"unknown item {i!r}",
                             "type": "unknown_item"} for i in unknown[:20]])
    start = time.perf_counter()
    answer = rank(model, req.user_id, min(req.k, n_items), req.exclude_rated)
    tel = telemetry.get()
    tel.predict_latency.labels(served.version, arm).observe(time.perf_counter() - start)
    tel.predictions.labels(served.version, arm).inc(len(answer["items"]))
    _log(st, served, arm, answer)
    answer.update(model_version=served.version, version_name=served.version_name, arm=arm)
    if unknown:
        answer["unknown_items"] = unknown
    return json_response(answer)
