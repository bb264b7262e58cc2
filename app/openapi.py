"""The OpenAPI 3.1 document, generated from the same pydantic models that validate requests."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.schemas import RequestModels


class ErrorOut(BaseModel):
    """Every error answer."""

    error: str
    details: list


class IntervalOut(BaseModel):
    """Regression interval."""

    lower: float
    upper: float
    level: float


class PredictionOut(BaseModel):
    """One answer of /predict."""

    prediction: float | int
    prediction_id: str
    model_version: str
    version_name: str
    arm: Literal["default", "champion", "challenger"]
    probability: float | None = None
    threshold: float | None = None
    interval: IntervalOut | None = None


class BatchOut(BaseModel):
    """A batch answer of /predict."""

    predictions: list[PredictionOut]


class FeedbackOut(BaseModel):
    """Answer of /feedback."""

    recorded: int
    feedback: list[dict]


ROUTES = [  # path, method, summary, role, request model key, answer model, error codes
    ("/health", "get", "Liveness and readiness", None, None, None, [503]),
    ("/versions", "get", "Registered versions, aliases, metrics, A/B set-up", "client", None,
     None, [401, 429, 503]),
    ("/load_version/{version_name}", "post", "Point the serving alias at a version", "admin",
     None, None, [401, 403, 404, 409, 429]),
    ("/predict", "post", "Predict one record or a batch", "client", "predict", "predict",
     [400, 401, 404, 413, 415, 422, 429, 503]),
    ("/feedback", "post", "True values for earlier predictions", "client", "feedback",
     "FeedbackOut", [400, 401, 404, 409, 413, 415, 422, 429]),
    ("/model_health", "get", "Live metrics, status and drift per version", "client", None, None,
     [401, 422, 429]),
    ("/recommend", "post", "Top-k items for a user (regression models)", "client", "recommend",
     None, [400, 401, 404, 413, 415, 422, 429]),
    ("/metrics", "get", "Prometheus exposition", None, None, None, []),
]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(route, bodies: dict, answers: dict) -> dict:
    path, _method, summary, role, body, answer, errors = route
    op: dict = {"summary": summary, "responses": {"200": {"description": "OK"}}}
    if answer:
        op["responses"]["200"]["content"] = {"application/json": {"schema": answers[answer]}}
    for code in errors:
        op["responses"][str(code)] = {"description": "Error",
                                      "content": {"application/json": {"schema": _ref("ErrorOut")}}}
    if role:
        op["security"] = [{"ApiKey": []}]
        op["description"] = f"Needs a {role} key in X-API-Key."
    if body in bodies:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": bodies[body]}}}
    if "{version_name}" in path:
        op["parameters"] = [{"name": "version_name", "in": "path", "required": True,
                             "schema": {"type": "string"}}]
    if path == "/model_health":
        op["parameters"] = [{"name": "window_hours", "in": "query", "required": False,
                             "schema": {"type": "number", "exclusiveMinimum": 0,
                                        "maximum": 24 * 365}}]
    return op


def document(models: RequestModels, model_name: str,
             recommend: type[BaseModel] | None = None) -> dict:
    """The OpenAPI document of this server (for one data set's input schema).

    Args:
        models: the request models.
        model_name: registered model name (shown in the title).
        recommend: the /recommend body model (recommender data sets only).

    Returns:
        The document as a dict.
    """
    all_models = [models.single, models.batch, models.feedback, ErrorOut, PredictionOut,
                  BatchOut, FeedbackOut, *([recommend] if recommend else [])]
    _, schemas = models_json_schema([(m, "validation") for m in all_models],
                                    ref_template="#/components/schemas/{model}")
    bodies = {"predict": {"oneOf": [_ref("PredictRecord"), _ref("PredictBatch")]},
              "feedback": {"oneOf": [_ref("Feedback"),
                                     {"type": "array", "items": _ref("Feedback")}]}}
    if recommend is not None:
        bodies["recommend"] = _ref(recommend.__name__)
    answers = {"predict": {"oneOf": [_ref("PredictionOut"), _ref("BatchOut")]},
               "FeedbackOut": _ref("FeedbackOut")}
    paths: dict = {}
    for route in ROUTES:
        paths.setdefault(route[0], {})[route[1]] = _operation(route, bodies, answers)
    return {
        "openapi": "3.1.0",
        "info": {"title": f"caretflow serving ({model_name})", "version": "1.0"},
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {}),
                       "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header",
                                                      "name": "X-API-Key"}}},
    }
