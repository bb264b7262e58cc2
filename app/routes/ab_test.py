"""``GET /ab_test`` (the A/B verdict), ``GET /alerts`` and ``POST /rollback``."""

from __future__ import annotations

from flask import Blueprint, request

from app import promotion
from app.alerts import events
from app.auth import key_id, presented_key, requires
from app.errors import ApiError
from app.http import json_response
from app.observer import verdict_of
from app.openapi import documented
from app.registry_calls import RegistryUnavailable, unavailable
from app.routes.model_health import MAX_WINDOW_HOURS, window_hours
from app.state import state

bp = Blueprint("ab_test", __name__)
WINDOW = {"window_hours": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WINDOW_HOURS}}


@bp.get("/ab_test")
@requires("client")
@documented("The A/B verdict: champion against challenger, with statistics",
            errors=(404, 422, 503), query=WINDOW)
def ab_test():
    """Labels per arm, metrics with 95 % intervals, the difference, and the decision.

    404 while no challenger serves beside the champion.
    """
    st = state()
    contract = st.contract
    default = st.settings.HEALTH_WINDOW_HOURS or contract["health"]["window_hours"]
    hours = window_hours(request.args.get("window_hours"), default)
    if st.store.challenger is None:
        raise ApiError(404, "no challenger serves beside the champion",
                       [f"point @{st.store.challenger_alias} at a version of the same contract"])
    return json_response(verdict_of(st, contract, st.store.default.version,
                                    st.store.challenger.version, hours))


@bp.get("/alerts")
@requires("client")
@documented("Recent alerts, newest first", errors=(422,), query={
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000}})
def alerts():
    """The latest alerts of this registered model, with their webhook deliveries."""
    st = state()
    raw = request.args.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ApiError(422, "limit must be an integer in [1, 1000]")
    return json_response({"model_name": st.store.name,
                          "alerts": events.recent(st.engine, int(raw), st.store.name)})


@bp.post("/rollback")
@requires("admin")
@documented("Move the serving alias back to the previous version", errors=(409, 503))
def rollback():
    """``@champion`` back to ``@previous`` (set by the last promotion); every worker follows.

    409 when there is no previous version, 503 while the registry is down.
    """
    st = state()
    try:
        out = promotion.rollback(st, key_id(presented_key() or "insecure-dev"))
    except LookupError as exc:
        raise ApiError(409, str(exc)) from None
    except RegistryUnavailable as exc:
        raise unavailable(exc) from None
    return json_response({"serving_alias": st.settings.SERVING_ALIAS, **{
        k: out[k] for k in ("version", "rolled_back_from")}})
