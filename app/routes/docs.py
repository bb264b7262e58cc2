"""``GET /openapi.json`` and ``GET /docs``: Swagger UI served from local assets (no CDN)."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, send_from_directory

from app.http import json_response
from app.openapi import document, documented, undocumented
from app.state import state

bp = Blueprint("docs", __name__)
ASSETS = {"swagger-ui.css": "css", "swagger-ui-bundle.js": "js",
          "swagger-ui-standalone-preset.js": "js", "swagger.svg": "images"}

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>caretflow API</title><link rel="icon" href="docs/assets/swagger.svg">
<link rel="stylesheet" href="docs/assets/swagger-ui.css"></head><body>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/assets/swagger-ui-standalone-preset.js"></script>
<script>
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", window.location.href).href, dom_id: "#swagger-ui",
    deepLinking: true, validatorUrl: null, persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"});
};
</script></body></html>"""


@lru_cache(maxsize=1)
def swagger_dir() -> Path | None:
    """The offline Swagger UI assets of ``flask-openapi3-swagger`` (None if not installed).

    Only its files are used, found without importing the package.
    """
    spec = importlib.util.find_spec("flask_openapi3_swagger")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "templates" / "swagger"
    return path if path.is_dir() else None


@bp.get("/openapi.json")
@documented("This OpenAPI document", answer=dict)
def openapi_json():
    """Every route of this server, with the request bodies of the serving model's contract.

    Built per request: a default version with another contract shows its own bodies; before
    a model is loaded, bodies are documented as JSON objects.
    """
    return json_response(document(current_app, state()))


@bp.get("/docs")
@documented("Swagger UI", media="text/html")
def docs():
    """Swagger UI for /openapi.json (every asset is served by this app)."""
    return Response(PAGE, mimetype="text/html")


@bp.get("/docs/assets/<name>")
@undocumented("a Swagger UI asset of /docs")
def assets(name: str):
    """One Swagger UI asset, from a fixed list (no path from the request reaches the disk)."""
    base = swagger_dir()
    if name not in ASSETS or base is None:
        abort(404)
    return send_from_directory(base / ASSETS[name], name, max_age=86400)
