"""Constant-answer apps for ``bench/request_budget.py``: what the HTTP layers cost alone.

``constant_wsgi`` is a bare WSGI callable; ``constant_flask()`` builds a Flask app with one
route. Both read the request body and answer the one-record ``/invocations`` answer, so a
server running them under caretflow's gunicorn worker pays the connection, gunicorn and
(for the second) Flask, and nothing of caretflow.
"""

from __future__ import annotations

ANSWER = b'{"predictions": [0]}'


def constant_wsgi(environ, start_response):
    """Read the body, answer ``ANSWER``."""
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(ANSWER)))])
    return [ANSWER]


def constant_flask():
    """A Flask app whose ``/invocations`` reads the body and answers ``ANSWER``."""
    from flask import Flask, Response, request

    app = Flask("floor")

    @app.post("/invocations")
    def invocations():
        request.get_data()
        return Response(ANSWER, mimetype="application/json")

    @app.get("/ping")
    def ping():
        return Response(b"", 200)

    return app
