"""caretflow serving app: ``create_app(config=None)``; nothing runs at import time."""

from __future__ import annotations

import logging


def create_app(config: dict | None = None):
    """Build the Flask app: settings, keys, prediction DB, models by alias, blueprints.

    Args:
        config: overrides for any setting (same names as the environment variables), e.g.
            ``{"MODEL_NAME": "churn", "API_KEYS": "k1", "BACKGROUND": False}``.

    Returns:
        The Flask app; its state is in ``app.extensions["caretflow"]`` (``.stop()`` ends the
        background threads). Every request gets an id (``X-Request-Id``, ``app.logs``).
    """
    from app import logs
    from app.factory import build

    logs.ensure_handlers()  # no-op under gunicorn or when the host configured logging
    app = build(config)
    logs.install(app)
    return app


__all__ = ["create_app"]
logging.getLogger(__name__).addHandler(logging.NullHandler())
