"""Promotion (challenger to champion) and rollback (champion back to previous).

Both move registry aliases only: the alias is the single source of truth for what serves, so
every worker of every instance follows it at its next alias refresh. Both are idempotent
(a second worker doing the same move changes nothing and writes no second alert).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

from app.alerts import events
from app.registry_calls import registry_call
from app.state import State

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def promote(st: State, version: str, reason: dict, by: str) -> dict | None:
    """Point the serving alias at ``version``; the replaced champion gets the previous alias.

    Args:
        st: the app state.
        version: the challenger version to promote.
        reason: why (the verdict's numbers), stored as a version tag and in the alert.
        by: who (``auto`` or a key id).

    Returns:
        The ``promoted`` alert, or None when ``version`` already serves.
    """
    store, settings, client = st.store, st.settings, st.store.client
    old = store.aliases.get(settings.SERVING_ALIAS)
    if old == version:
        return None
    for key, value in {"caretflow.promoted_at": _now(), "caretflow.promoted_by": by,
                       "caretflow.promotion_reason": orjson.dumps(reason).decode()[:5000]}.items():
        registry_call(client.set_model_version_tag, store.name, version, key, value)
    if old is not None:
        registry_call(client.set_registered_model_alias, store.name, settings.PREVIOUS_ALIAS, old)
    registry_call(client.set_registered_model_alias, store.name, settings.SERVING_ALIAS, version)
    if store.aliases.get(settings.CHALLENGER_ALIAS) == version:
        registry_call(client.delete_registered_model_alias, store.name,
                      settings.CHALLENGER_ALIAS)
    store.refresh()
    text = (f"{store.name} version {version} promoted to @{settings.SERVING_ALIAS} by {by}"
            f" (v{old} is now @{settings.PREVIOUS_ALIAS}).")
    return events.record_event(st.engine, "promoted", store.name, version,
                               settings.SERVING_ALIAS, text,
                               {"previous": old, "by": by, "reason": reason},
                               settings.ALERT_WEBHOOK_URLS, key=f"promote:{old}->{version}")


def rollback(st: State, by: str) -> dict:
    """Point the serving alias back at the previous alias's version.

    Returns:
        ``{"version", "rolled_back_from", "alert"}``.

    Raises:
        LookupError: no previous version to go back to.
    """
    store, settings, client = st.store, st.settings, st.store.client
    store.refresh()
    previous = store.aliases.get(settings.PREVIOUS_ALIAS)
    current = store.aliases.get(settings.SERVING_ALIAS)
    if previous is None or previous == current:
        raise LookupError(f"{store.name} has no @{settings.PREVIOUS_ALIAS} version to roll "
                          "back to")
    for key, value in {"caretflow.rolled_back_at": _now(), "caretflow.rolled_back_by": by}.items():
        registry_call(client.set_model_version_tag, store.name, current, key, value)
    registry_call(client.set_registered_model_alias, store.name, settings.SERVING_ALIAS,
                  previous)
    registry_call(client.delete_registered_model_alias, store.name, settings.PREVIOUS_ALIAS)
    store.refresh()
    text = (f"{store.name} rolled back: @{settings.SERVING_ALIAS} moved from v{current} back to "
            f"v{previous} by {by}.")
    alert = events.record_event(st.engine, "rolled_back", store.name, previous,
                                settings.SERVING_ALIAS, text, {"from": current, "by": by},
                                settings.ALERT_WEBHOOK_URLS, key=f"rollback:{current}->{previous}"
                                f"@{_now()}")
    log.warning(text)
    return {"version": previous, "rolled_back_from": current, "alert": alert}
