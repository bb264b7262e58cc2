"""``GET /versions`` and ``POST /load_version/<version_name>``."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint

from app.auth import key_id, presented_key, requires
from app.contracts import require_same, tag_differences
from app.errors import ApiError
from app.http import json_response
from app.model_store import LoadError
from app.openapi import documented
from app.registry_calls import RegistryUnavailable, unavailable
from app.state import state

bp = Blueprint("versions", __name__)


def _metrics(client, run_id: str) -> tuple[dict, dict]:
    metrics = client.get_run(run_id).data.metrics
    pick = {p: {k: v for k, v in metrics.items() if k.startswith(p)} for p in ("test_", "live_")}
    return pick["test_"], pick["live_"]


@bp.get("/versions")
@requires("client")
@documented("Registered versions, aliases, metrics, A/B set-up", errors=(503,))
def versions():
    """Every registered version with aliases, test and live metrics, and the A/B set-up.

    ``contract_mismatch`` lists why a version cannot serve beside the default one (from
    its registry tags; empty when it can).
    """
    st = state()
    store, client = st.store, st.store.client
    serving = store.default.contract if store.default else None
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
                "task": mv.tags.get("task"), "schema_digest": mv.tags.get("schema_digest"),
                "contract_mismatch": tag_differences(serving, mv.tags),
            })
    except Exception:  # noqa: BLE001 - registry down
        raise unavailable(RegistryUnavailable(store.registry_error or "")) from None
    champion, challenger = st.settings.AB_WEIGHTS
    return json_response({
        **store.status(), "versions": rows,
        "ab_testing": {"weights": {"champion": champion, "challenger": challenger},
                       "challenger_alias": store.challenger_alias,
                       "shadow_mode": st.settings.SHADOW_MODE},
    })


@bp.post("/load_version/<version_name>")
@requires("admin")
@documented("Point the serving alias at a version", errors=(404, 409, 503))
def load_version(version_name: str):
    """Point the serving alias at a version (alias or number); every worker follows.

    404 unknown, 409 unloadable or of another contract, 503 while the registry is down.
    """
    st = state()
    store = st.store
    previous = store.default.version if store.default else None
    tags = {"caretflow.serving_set_by": key_id(presented_key() or "insecure-dev"),
            "caretflow.serving_set_at": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        version = store.resolve(version_name)
        if version is None:
            raise ApiError(404, f"unknown version_name '{version_name}'")
        require_same(store, store.get(version))
        served = store.move_alias(version, tags)
    except RegistryUnavailable as exc:
        raise unavailable(exc) from None
    except LoadError as exc:
        raise ApiError(409, f"version {version} cannot be loaded; nothing changed",
                       [str(exc)]) from None
    return json_response({"serving_alias": store.alias, "version": served.version,
                          "version_name": served.version_name, "previous_version": previous})
