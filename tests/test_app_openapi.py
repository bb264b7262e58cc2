"""/openapi.json is built from the app's routes: every url_map rule is in it, or it fails."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from app.auth import requires
from app.openapi import ATTR, UndocumentedRoutes, document, documented


def _documented_rules(app):
    """(OpenAPI path, method) of every rule of the app but Flask's static files."""
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        if getattr(app.view_functions[rule.endpoint], ATTR).hidden:
            assert rule.rule.startswith("/docs/assets/"), f"{rule.rule} left out of the document"
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        out |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return out


def test_every_route_of_the_url_map_is_in_the_document(shared_app, client):
    doc = client.get("/openapi.json").json
    listed = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    rules = _documented_rules(shared_app)
    assert listed == rules
    assert {("/predict", "post"), ("/openapi.json", "get"), ("/docs", "get"),
            ("/load_version/{version_name}", "post")} <= rules


def test_operations_say_what_the_views_do(client):
    paths = client.get("/openapi.json").json["paths"]
    predict = paths["/predict"]["post"]
    body = predict["requestBody"]["content"]["application/json"]["schema"]
    assert {r["$ref"].rsplit("/", 1)[1] for r in body["anyOf"]} == {"PredictRecord",
                                                                     "PredictBatch"}
    # from @requires("client"): any of the three ways app.auth takes a key
    assert predict["security"] == [{"ApiKey": []}, {"Bearer": []}, {"Basic": []}]
    assert {"401", "415", "422", "429"} <= set(predict["responses"]) and "403" not in predict[
        "responses"]
    assert "403" in paths["/load_version/{version_name}"]["post"]["responses"]  # admin route
    assert "201" in paths["/feedback"]["post"]["responses"]  # as the view answers
    assert "security" not in paths["/health"]["get"]
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    window = paths["/model_health"]["get"]["parameters"][0]
    assert window["name"] == "window_hours" and window["schema"]["maximum"] == 24 * 365
    version = paths["/load_version/{version_name}"]["post"]["parameters"][0]
    assert version == {"name": "version_name", "in": "path", "required": True,
                       "schema": {"type": "string"}}


def test_a_route_without_documented_fails_the_builder(shared_app):
    st = shared_app.extensions["caretflow"]
    mini = Flask("mini")

    @mini.post("/scored/<int:n>")
    @requires("admin")
    @documented("A documented route", body=lambda s: s.requests.feedback, errors=(404,))
    def scored(n):
        return {}

    doc = document(mini, st)  # documented routes only: fine
    op = doc["paths"]["/scored/{n}"]["post"]
    assert op["parameters"][0]["schema"] == {"type": "integer"}
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Feedback"}
    assert {"401", "403", "404", "429", "503"} <= set(op["responses"])

    @mini.get("/forgotten")
    def forgotten():
        return {}

    with pytest.raises(UndocumentedRoutes) as err:
        document(mini, st)
    assert err.value.rules == ["/forgotten"]
