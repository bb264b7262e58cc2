"""``GET /model_health``: per version, live metrics against the gate, status and drift."""

from __future__ import annotations

from flask import Blueprint, request

from app.auth import requires
from app.errors import ApiError
from app.health_report import report
from app.http import json_response
from app.openapi import documented
from app.state import state

bp = Blueprint("model_health", __name__)
MAX_WINDOW_HOURS = 24 * 365


def window_hours(raw: str | None, default: float) -> float:
    """The ``window_hours`` query parameter, or ``default``; 422 unless in (0, 8760]."""
    try:
        hours = float(raw) if raw is not None else float(default)
    except ValueError:
        hours = -1.0
    if not 0 < hours <= MAX_WINDOW_HOURS:
        raise ApiError(422, f"window_hours must be a number in (0, {MAX_WINDOW_HOURS}]")
    return hours


@bp.get("/model_health")
@requires("client")
@documented("Live metrics, status and drift per version", errors=(422, 503), query={
    "window_hours": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WINDOW_HOURS}})
def model_health():
    """Per version over the window: live metrics vs the gate, status, input drift."""
    st = state()
    contract = st.contract
    default = st.settings.HEALTH_WINDOW_HOURS or contract["health"]["window_hours"]
    hours = window_hours(request.args.get("window_hours"), default)
    return json_response(report(contract, st.engine, st.store, hours))
