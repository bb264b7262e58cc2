"""Assembly of the app: state, blueprints, error handlers, rate limits, telemetry hooks.

Neither ``conf/`` nor Hydra is read: settings come from the environment and ``config``,
and what the served model means comes from the model (its contract).
"""

from __future__ import annotations

import functools
import logging
import os
import time

import mlflow
from flask import Flask, g, request
from flask_limiter import Limiter
from mlflow.tracking import MlflowClient

from app import auth, telemetry
from app.background import Periodic
from app.errors import register_error_handlers
from app.leadership import Leadership
from app.lean import Lean
from app.live_metrics import LiveMetrics
from app.model_store import ModelStore
from app.observer import Observer
from app.prediction_log import retention
from app.prediction_log.db import analyze, checkpoint, make_engine
from app.routes import (
    ab_test,
    docs,
    feedback,
    health,
    inference_v2,
    mlflow_protocol,
    model_health,
    predict,
    recommend,
    versions,
)
from app.settings import load_settings
from app.state import State
from caretflow.store_uri import tracking_uri

CHECKPOINT_SECONDS = 1.0  # SQLite prediction log: WAL copied back off the request path
ANALYZE_SECONDS = 600.0  # ... and its planner statistics refreshed
log = logging.getLogger("app")
OPEN_BLUEPRINTS = (health.bp, docs.bp,  # no key, no rate limit (health, metrics, docs)
                   mlflow_protocol.open_bp, inference_v2.open_bp)


class CaretflowFlask(Flask):
    """Flask, asking once per function whether it is a coroutine function, with lean routes.

    ``Flask.ensure_sync`` (its documented override point) runs ``iscoroutinefunction`` on
    every hook and view of every request; the answer never changes for a function. Before
    Flask's own ``wsgi_app`` (the documented place for middleware), ``app.lean`` may answer
    the request.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync_forms: dict = {}  # function -> what ensure_sync answered for it

    def ensure_sync(self, func):
        """``func``, or its synchronous wrapper for an ``async def`` (cached per function)."""
        try:
            return self._sync_forms[func]
        except KeyError:
            return self._sync_forms.setdefault(func, super().ensure_sync(func))
        except TypeError:  # an unhashable callable: as Flask does
            return super().ensure_sync(func)

    def wsgi_app(self, environ, start_response):
        """Flask's, once ``app.lean`` has declined the request (it answers some itself)."""
        lean = self.extensions.get("caretflow_lean")
        answer = None if lean is None else lean(environ, start_response)
        return super().wsgi_app(environ, start_response) if answer is None else answer


def build(config: dict | None) -> Flask:
    """See ``app.create_app``."""
    settings = load_settings(config)
    keyring = auth.KeyRing(settings.client_keys, settings.admin_keys, settings.INSECURE_DEV_MODE)
    if not (settings.client_keys or settings.admin_keys or settings.INSECURE_DEV_MODE):
        raise RuntimeError("no API keys configured: set API_KEYS / ADMIN_API_KEYS (or run "
                           "`python -m app.devkeys`), or INSECURE_DEV_MODE=1 for local use")
    uri = settings.MLFLOW_TRACKING_URI or tracking_uri()
    if mlflow.get_tracking_uri() != uri:  # artifact downloads use the global URI
        mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    engine = make_engine(settings.PREDICTION_DB_URL, settings.DB_BUSY_TIMEOUT_SECONDS,
                         autocheckpoint=not settings.BACKGROUND)
    store = ModelStore(client, settings.MODEL_NAME, settings.SERVING_ALIAS,
                       settings.CHALLENGER_ALIAS, settings.PREDICT_THREADS)
    st = State(settings=settings, keys=keyring, store=store, engine=engine,
               live=LiveMetrics(engine, client, settings.MODEL_NAME, store.contract_of))

    app = CaretflowFlask("caretflow")
    app.config["MAX_CONTENT_LENGTH"] = settings.MAX_CONTENT_LENGTH
    app.json.sort_keys = False
    app.extensions["caretflow"] = st
    register_error_handlers(app)
    _limits(app, settings)
    for bp in (predict.bp, recommend.bp, feedback.bp, versions.bp, health.bp,
               model_health.bp, ab_test.bp, docs.bp):
        app.register_blueprint(bp)
    for bp in (mlflow_protocol.bp, mlflow_protocol.open_bp, inference_v2.bp,
               inference_v2.open_bp):  # drop-in protocols (docs/serving.md)
        app.register_blueprint(bp)
    _telemetry_hooks(app)
    app.extensions["caretflow_lean"] = Lean(app)
    _start(st)
    return app


def _limits(app: Flask, settings) -> None:
    limiter = Limiter(auth.limit_key, app=app, storage_uri=settings.RATE_LIMIT_STORAGE_URI,
                      default_limits=[settings.RATE_LIMIT] if settings.RATE_LIMIT else [],
                      headers_enabled=True, strategy="fixed-window",
                      enabled=bool(settings.RATE_LIMIT),
                      # Redis down: count per worker in memory until it is back (never a 500).
                      in_memory_fallback_enabled=not settings.RATE_LIMIT_STORAGE_URI.startswith(
                          "memory"))
    for bp in OPEN_BLUEPRINTS:
        limiter.exempt(bp)
    app.extensions["caretflow_limiter"] = limiter


def _telemetry_hooks(app: Flask) -> None:
    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        telemetry.observe_request(route, request.method, response.status_code,
                                  time.perf_counter() - g.get("started", 0.0))
        return response


def _start(st: State) -> None:
    """First alias resolution (bounded wait), then the background loops."""
    settings = st.settings
    if not settings.BACKGROUND:
        st.store.refresh()
        return
    refresher = Periodic("alias-refresh", settings.ALIAS_REFRESH_SECONDS, st.store.refresh)
    st.tasks.append(refresher.start())
    st.store.attempted.wait(settings.STARTUP_WAIT_SECONDS)
    if not st.store.ready:
        log.warning("no model loaded yet (%s); /health answers 503 until one is",
                    st.store.registry_error or "still loading")
    st.tasks.append(Periodic("live-metrics", settings.LIVE_METRICS_SECONDS, st.live.tick).start())
    st.tasks.append(Periodic("wal-checkpoint", CHECKPOINT_SECONDS,
                             functools.partial(checkpoint, st.engine)).start())
    # The same result in every worker: one worker of the instance does it (app.leadership).
    lead = Leadership(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    shared = [("observe", settings.OBSERVE_SECONDS, Observer(st).tick),
              ("db-analyze", ANALYZE_SECONDS, functools.partial(analyze, st.engine))]
    if settings.PREDICTION_RETENTION_DAYS:
        shared.append(("retention", retention.PURGE_SECONDS, functools.partial(
            retention.purge, st.engine, settings.PREDICTION_RETENTION_DAYS)))
    for name, seconds, work in shared:
        st.tasks.append(Periodic(name, seconds, lead.leading(work)).start())
    st.tasks.append(lead)  # stopped after the loops: the lead passes to another worker
