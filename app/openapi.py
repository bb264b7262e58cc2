"""The OpenAPI 3.1 document, built from the app's own routes and pydantic models.

Each view function carries its documentation (``@documented(...)`` directly above its
``def``); ``document`` walks the app's ``url_map``, so a route cannot be missing from
``/openapi.json``: a rule whose view is neither ``documented`` nor ``undocumented`` makes
the builder raise ``UndocumentedRoutes``. What the view itself says is used as is: its
docstring, its path parameters, its ``requires`` role (security, 401/403/429).

Request bodies may depend on the serving model's contract (``app.state``): give ``body`` a
function of the state, and the document, built per request, shows the current models.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from http import HTTPStatus

from flask import Flask
from pydantic import TypeAdapter

from app.api_models import ErrorOut
from app.auth import HEADER
from app.errors import ApiError

JSON = "application/json"
# The key as ``X-API-Key``, as a Bearer token, or as the password of HTTP Basic (app.auth).
SCHEMES = {"ApiKey": {"type": "apiKey", "in": "header", "name": HEADER},
           "Bearer": {"type": "http", "scheme": "bearer"},
           "Basic": {"type": "http", "scheme": "basic"}}
SECURITY = [{"ApiKey": []}, {"Bearer": []}, {"Basic": []}]
ATTR = "openapi"  # the view-function attribute holding its ``Operation``
BODY_ERRORS = (400, 413, 415, 422)  # app.http.json_body, MAX_CONTENT_LENGTH, validation
_PARAM = re.compile(r"<(?:(\w+)(?:\([^>]*\))?:)?(\w+)>")
_PARAM_TYPES = {"int": "integer", "float": "number"}


@dataclass(frozen=True)
class Operation:
    """What the document says about one view (see ``documented``)."""

    summary: str
    body: object = None
    answer: object = None
    status: tuple[int, ...] = (200,)
    errors: tuple[int, ...] = ()
    query: dict | None = None
    media: str = JSON
    hidden: bool = False


def documented(summary: str, *, body=None, answer=None, status: int | tuple = 200,
               errors: tuple = (), query: dict | None = None, media: str = JSON):
    """View decorator (directly above the ``def``): the view's entry in the document.

    Args:
        summary: one line.
        body: the JSON request body: a type pydantic can describe, or a function of the
            app state returning one (None: no body for this contract).
        answer: the type of the success answer (None: not described).
        status: the success status(es); each answers ``answer``.
        errors: the error statuses the view itself raises (``ErrorOut``). Key checks,
            rate limits and body parsing add theirs.
        query: query parameter name -> JSON schema (all optional).
        media: the success answer's media type when it is not JSON.
    """
    statuses = (status,) if isinstance(status, int) else tuple(status)
    spec = Operation(summary, body, answer, statuses, tuple(errors), query, media)

    def mark(view):
        setattr(view, ATTR, spec)
        return view

    return mark


def undocumented(reason: str):
    """View decorator: deliberately left out of the document (e.g. Swagger UI assets)."""

    def mark(view):
        setattr(view, ATTR, Operation(reason, hidden=True))
        return view

    return mark


class UndocumentedRoutes(RuntimeError):
    """Some routes of the app carry no ``documented`` / ``undocumented`` decorator."""

    def __init__(self, rules: list[str]):
        super().__init__("routes without @documented: " + ", ".join(rules))
        self.rules = rules


def operations(app: Flask) -> list[tuple]:
    """``(path, method, view, Operation)`` of every documented rule, in path order.

    Raises:
        UndocumentedRoutes: naming every rule whose view is not decorated.
    """
    found, missing = [], []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":  # Flask's own static files
            continue
        view = app.view_functions[rule.endpoint]
        spec = getattr(view, ATTR, None)
        if spec is None:
            missing.append(rule.rule)
        elif not spec.hidden:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                found.append((rule, method.lower(), view, spec))
    if missing:
        raise UndocumentedRoutes(missing)
    return found


def _resolve(value, st):
    """A type, or the type a function of the state gives.

    A function that gives None (not for this contract) or finds no serving contract yet
    documents a JSON object: the view still reads one.
    """
    if not (inspect.isfunction(value) or inspect.ismethod(value)):
        return value
    try:
        return value(st) or dict
    except ApiError:  # 503 from app.state: no model loaded yet
        return dict


def _path_and_parameters(rule, spec: Operation) -> tuple[str, list[dict]]:
    params = [{"name": name, "in": "path", "required": True,
               "schema": {"type": _PARAM_TYPES.get(conv or "", "string")}}
              for conv, name in _PARAM.findall(rule.rule)]
    params += [{"name": name, "in": "query", "required": False, "schema": schema}
               for name, schema in (spec.query or {}).items()]
    return _PARAM.sub(r"{\2}", rule.rule), params


def _content(spec: Operation, answer: dict | None) -> dict:
    if spec.media != JSON:
        return {spec.media: {"schema": {"type": "string"}}}
    return {JSON: {"schema": answer}} if answer is not None else {}


def _operation(rule, view, spec: Operation, schemas: dict) -> tuple[str, dict]:
    """The path and operation object of one rule and method.

    ``schemas`` maps ``(endpoint, "body" | "answer")`` to the JSON schemas of the types.
    """
    role = getattr(view, "required_role", None)  # set by app.auth.requires
    errors = set(spec.errors)
    if role:
        errors |= {401, 429} | ({403} if role == "admin" else set())
    content = _content(spec, schemas.get((rule.endpoint, "answer")))
    responses = {str(code): {"description": HTTPStatus(code).phrase,
                             **({"content": content} if content else {})}
                 for code in spec.status}
    op: dict = {"summary": spec.summary, "operationId": rule.endpoint,
                "tags": [rule.endpoint.split(".")[0]], "description": inspect.getdoc(view) or ""}
    if (rule.endpoint, "body") in schemas:
        errors |= set(BODY_ERRORS) | ({503} if inspect.isfunction(spec.body) else set())
        op["requestBody"] = {"required": True,
                             "content": {JSON: {"schema": schemas[(rule.endpoint, "body")]}}}
    for code in sorted(errors - set(spec.status)):
        responses[str(code)] = {"description": HTTPStatus(code).phrase, "content": {
            JSON: {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
    op["responses"] = dict(sorted(responses.items()))
    if role:
        op["security"] = SECURITY  # any one of them
        op["description"] += f"\n\nNeeds a {role} key in {HEADER}."
    path, params = _path_and_parameters(rule, spec)
    if params:
        op["parameters"] = params
    return path, op


def document(app: Flask, st) -> dict:
    """The OpenAPI document of ``app`` for its current serving contract.

    Args:
        app: the Flask app (every rule of its ``url_map`` is documented).
        st: its state (``app.state.State``): the request models of the serving contract.

    Returns:
        The document as a dict.

    Raises:
        UndocumentedRoutes: a route has no ``documented`` decorator.
    """
    ops = operations(app)
    types = {("", "error"): ErrorOut}
    for rule, _method, _view, spec in ops:
        for kind, value in (("body", spec.body), ("answer", spec.answer)):
            resolved = _resolve(value, st) if value is not None else None
            if resolved is not None:
                types[(rule.endpoint, kind)] = resolved
    refs, defs = TypeAdapter.json_schemas(
        [(key, "validation", TypeAdapter(t)) for key, t in types.items()],
        ref_template="#/components/schemas/{model}")
    schemas = {key: schema for (key, _mode), schema in refs.items()}
    paths: dict = {}
    for rule, method, view, spec in ops:
        path, op = _operation(rule, view, spec, schemas)
        if len(rule.methods - {"HEAD", "OPTIONS"}) > 1:
            op["operationId"] += f"_{method}"
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": f"caretflow serving ({st.store.name})", "version": "1.0"},
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {}),
                       "securitySchemes": SCHEMES},
    }
