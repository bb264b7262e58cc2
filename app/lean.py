"""The common case of the busiest routes answered below Flask; everything else by Flask.

For a one-record request, Flask's own work (application and request contexts, URL matching,
hooks, signals, the response object) is a large share of the server's CPU; the
``caretflow-lean-off`` row of ``bench/request_budget.py`` measures it. A view marked
``@answers(fn)`` therefore has a second way in. ``Lean``, which ``CaretflowFlask.wsgi_app``
asks before Flask, takes a request for the view's own rule and method when it can check it
at once: a key (``X-API-Key``, Bearer or Basic) with the view's role, an
``application/json`` body with a ``Content-Length`` within ``MAX_CONTENT_LENGTH``. It then
calls ``fn(state, body)``, which returns the view's JSON answer, or None having done
nothing. Flask answers every other request through the view, the body put back: a missing or
wrong key, another content type, a malformed or rejected body, and every request while rate
limits are on (``RATE_LIMIT``) or ``LEAN_ROUTES`` is off.

A lean answer is the view's own: the same bytes, status 200, an ``X-Request-Id`` (the prefix
of the prediction ids and the id of the log lines written meanwhile), the same request count
and latency. An error raised while ``fn`` scores goes to Flask's error handlers (the
blueprint's first) and after-request hooks, in a request context made for it. The rule,
method and role come from the view's registration: each route is still defined once.
"""

from __future__ import annotations

import io
import time

import orjson
from flask import Flask, g

from app import auth, logs, telemetry
from app.prediction_log.db import new_request_id

ATTR = "lean_answer"
JSON = "application/json"


def answers(fn):
    """View decorator: ``fn(state, body: bytes) -> dict | None`` answers the common case."""

    def mark(view):
        setattr(view, ATTR, fn)
        return view

    return mark


class Lean:
    """The lean routes of ``app`` (none with rate limits on or ``LEAN_ROUTES`` off).

    Args:
        app: the built app, every blueprint registered.
    """

    def __init__(self, app: Flask):
        self.app, self.st = app, app.extensions["caretflow"]
        self.limit = app.config.get("MAX_CONTENT_LENGTH")
        self.routes: dict[tuple[str, str], tuple] = {}
        settings = self.st.settings
        if settings.RATE_LIMIT or not settings.LEAN_ROUTES:
            return
        for rule in app.url_map.iter_rules():
            view = app.view_functions[rule.endpoint]
            fn = getattr(view, ATTR, None)
            if fn is None or rule.arguments:
                continue
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                self.routes[method, rule.rule] = (fn, getattr(view, "required_role", None),
                                                  rule.rule)

    def __call__(self, environ: dict, start_response):
        """The answer (a WSGI body) of a request taken here; None: Flask answers it."""
        route = self.routes.get((environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")))
        if route is None:
            return None
        fn, role, rule = route
        started = time.perf_counter()
        length = self._length(environ)
        if length is None or not self._admits(environ, role):
            return None
        raw = environ["wsgi.input"].read(length)
        rid = new_request_id()
        token = logs.LEAN_ID.set(rid)
        try:
            try:
                answer = fn(self.st, raw)
            except Exception as exc:  # noqa: BLE001 - answered as Flask answers it
                return self._error(exc, environ, start_response, raw, rid, started)
            if answer is None:
                environ["wsgi.input"] = io.BytesIO(raw)
                return None
            body = orjson.dumps(answer)
            start_response("200 OK", [("Content-Type", JSON), ("Content-Length", str(len(body))),
                                      (logs.HEADER, rid)])
            telemetry.observe_request(rule, environ["REQUEST_METHOD"], 200,
                                      time.perf_counter() - started)
            return [body]
        finally:
            logs.LEAN_ID.reset(token)

    def _length(self, environ: dict) -> int | None:
        """The body's length, when it is JSON and its length is given and allowed."""
        if environ.get("CONTENT_TYPE", "").strip().lower() != JSON:
            return None
        if environ.get("HTTP_TRANSFER_ENCODING"):
            return None
        text = environ.get("CONTENT_LENGTH", "")
        if not text.isdigit():
            return None
        length = int(text)
        return length if length > 0 and (self.limit is None or length <= self.limit) else None

    def _admits(self, environ: dict, role: str | None) -> bool:
        """Whether the request's key has ``role`` (None: any caller)."""
        if role is None:
            return True
        have = self.st.keys.role(auth.key_of(environ.get("HTTP_X_API_KEY"),
                                             environ.get("HTTP_AUTHORIZATION")))
        return have is not None and auth.ROLES[have] >= auth.ROLES[role]

    def _error(self, exc: Exception, environ: dict, start_response, raw: bytes, rid: str,
               started: float):
        """``exc`` answered by Flask's error handlers and after-request hooks."""
        environ["wsgi.input"] = io.BytesIO(raw)
        app = self.app
        with app.request_context(environ):
            g.request_id, g.started = rid, started
            response = app.finalize_request(app.handle_user_exception(exc))
        return response(environ, start_response)
