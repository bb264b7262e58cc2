"""Which version and arm answer a request: an explicit version, or the A/B split.

A record's arm follows from its routing key alone (``bucket``), so the same key lands on the
same arm on every worker.
"""

from __future__ import annotations

import hashlib

import numpy as np

from app.contracts import require_same
from app.errors import ApiError
from app.model_store import LoadError, Served
from app.registry_calls import RegistryUnavailable, unavailable
from app.state import State


def bucket(key: str) -> float:
    """A stable number in [0, 1) for a routing key (same key, same arm, on every worker)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64


def pick_version(st: State, version_name: str | None) -> Served | None:
    """The explicitly requested version, or None for routing.

    404 unknown, 503 unloadable or registry unreachable, 409 when its contract differs
    from the serving version's.
    """
    if version_name is None:
        return None
    try:
        version = st.store.resolve(version_name)
        if version is None:
            raise ApiError(404, f"unknown version_name '{version_name}'",
                           ["use an alias such as v2_random_forest or a version number"])
        served = st.store.get(version)
    except RegistryUnavailable as exc:
        raise unavailable(exc) from None
    except LoadError:
        raise ApiError(503, f"version '{version_name}' cannot be loaded",
                       ["see /health for the reason"]) from None
    require_same(st.store, served)
    return served


def route(st: State, keys: list[str], explicit: Served | None, ab: bool) -> list[tuple]:
    """``(served, arm, indices)`` groups; ``keys`` are the records' routing keys.

    ``indices`` is None when the group holds every record (no copy needed).
    """
    if explicit is not None:
        return [(explicit, "default", None)]
    default, challenger = st.store.default, st.store.challenger
    if default is None:
        raise ApiError(503, "no model loaded yet", ["see /health"])
    if not ab:
        return [(default, "default", None)]
    if challenger is None:
        return [(default, "champion", None)]
    share = st.settings.AB_WEIGHTS[0]
    to_challenger = np.array([bucket(k) >= share for k in keys], dtype=bool)
    groups = [(default, "champion", np.flatnonzero(~to_challenger)),
              (challenger, "challenger", np.flatnonzero(to_challenger))]
    return [g for g in groups if g[2].size]
