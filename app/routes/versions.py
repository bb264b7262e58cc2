"""``GET /versions`` and ``POST /load_version/<version_name>``."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, request

from app.auth import HEADER, key_id, requires
from app.errors import ApiError
from app.http import json_response
from app.model_store import LoadError
from app.state import state

bp = Blueprint("versions", __name__)


def _metrics(client, run_id: str) -> tuple[dict, dict]:
    metrics = client.get_run(run_id).data.metrics
    pick = {p: {k: v for k, v in metrics.items() if k.startswith(p)} for p in ("test_", "live_")}
    return pick["test_"], pick["live_"]


@bp.get("/versions")
@requires("client")
def versions():
    """Every registered version with aliases, test and live metrics, and the A/B set-up."""
    st = state()
    store, client = st.store, st.store.client
    try:
        found = client.search_model_versions(f"name = '{store.name}'")
        by_version: dict[str, list[str]] = {}
        for alias, v in client.get_registered_model(store.name).aliases.items():
            by_version.setdefault(str(v), []).append(alias)
        rows = []
        for mv in sorted(found, key=lambda m: int(m.version)):
            test, live = _metrics(client, mv.run_id)
            rows.append({
                "version": str(mv.version), "version_name": mv.tags.get("version_name"),
                "aliases": sorted(by_version.get(str(mv.version), [])),
                "default": store.default is not None and store.default.version == str(mv.version),
                "gate": mv.tags.get("gate"), "run_id": mv.run_id,
                "test_metrics": test, "live_metrics": live,
                "load_error": store.load_errors.get(str(mv.version)),
            })
    except Exception:  # noqa: BLE001 - registry down
        raise ApiError(503, "model registry unreachable", [store.registry_error or ""]) from None
    champion, challenger = st.settings.AB_WEIGHTS
    return json_response({
        **store.status(), "versions": rows,
        "ab_testing": {"weights": {"champion": champion, "challenger": challenger},
                       "challenger_alias": store.challenger_alias,
                       "shadow_mode": st.settings.SHADOW_MODE},
    })


@bp.post("/load_version/<version_name>")
@requires("admin")
def load_version(version_name: str):
    """Point the serving alias at a version (alias or number); every worker follows."""
    st = state()
    store = st.store
    version = store.resolve(version_name)
    if version is None:
        raise ApiError(404, f"unknown version_name '{version_name}'")
    previous = store.default.version if store.default else None
    tags = {"caretflow.serving_set_by": key_id(request.headers.get(HEADER, "insecure-dev")),
            "caretflow.serving_set_at": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        served = store.move_alias(version, tags)
    except LoadError as exc:
        raise ApiError(409, f"version {version} cannot be loaded; nothing changed",
                       [str(exc)]) from None
    return json_response({"serving_alias": store.alias, "version": served.version,
                          "version_name": served.version_name, "previous_version": previous})
