"""``GET /health`` and ``GET /metrics`` (``/model_health`` is in ``app.routes.model_health``)."""

from __future__ import annotations

import os

from flask import Blueprint, Response

from app import telemetry
from app.http import json_response
from app.openapi import documented
from app.state import state

bp = Blueprint("health", __name__)


@bp.get("/health")
@documented("Liveness and readiness", status=(200, 503))
def health():
    """Liveness and readiness: 200 when a model serves, 503 until then."""
    st = state()
    status = st.store.status()
    ready = st.store.ready
    reachable = status["registry_error"] is None and st.store.last_refresh is not None
    body = {"status": ("ok" if reachable else "degraded") if ready else "not_ready",
            "ready": ready, "registry_reachable": reachable, "worker_pid": os.getpid(),
            **status}
    return json_response(body, 200 if ready else 503)


@bp.get("/metrics")
@documented("Prometheus exposition", media="text/plain")
def metrics():
    """Prometheus exposition."""
    data, content_type = telemetry.exposition()
    return Response(data, content_type=content_type)
