"""Open Inference Protocol v2 (REST): health, server and model metadata, readiness, infer.

The model is the served registered name; ``{version}`` is a version number or an alias
(like ``version_name``). One input tensor per feature, named and typed by the model's
contract (``INT64``, ``FP64``, ``BYTES`` for categories), shape ``[n]``; the routing key
and id columns may be sent as optional inputs. Outputs: ``prediction`` and ``probability``
(classification) or ``lower`` and ``upper`` (regression). Inference is ``/predict``'s:
validated, routed (request parameter ``enable_ab_testing``), logged; prediction ids are the
``X-Request-Id`` (also the response parameter ``request_id``) + position. Errors are the
protocol's ``{"error": "..."}`` (with this server's ``details`` list beside it).
"""

from __future__ import annotations

import re

from flask import Blueprint, request

from app import routing, scoring, v2_tensors
from app.auth import requires
from app.batchcheck import Columns
from app.errors import ApiError
from app.http import json_response
from app.logs import request_id
from app.openapi import documented
from app.routes.mlflow_protocol import batch_of
from app.state import State, state

bp = Blueprint("inference_v2", __name__)
open_bp = Blueprint("inference_v2_health", __name__)  # no key, no rate limit
_RECORD_FIELD = re.compile(r"records\.(\d+)\.(.+)")
MAX_DETAILS = 20  # problems named in one error message


def _error(exc: ApiError):
    """The protocol's error object; a validation error (422) is a bad request (400).

    ``error`` says everything (v2 clients read only it); ``details`` is the list every
    error of this server carries.
    """
    parts = []
    for item in exc.details:
        if isinstance(item, dict):
            field = _RECORD_FIELD.sub(r"\2[\1]", item.get("field", ""))
            parts.append(f"{field}: {item.get('message')}")
        else:
            parts.append(str(item))
    if len(parts) > MAX_DETAILS:
        parts = [*parts[:MAX_DETAILS], f"and {len(parts) - MAX_DETAILS} more"]
    text = exc.error + (f" ({'; '.join(parts)})" if parts else "")
    response = json_response({"error": text, "details": exc.details},  # details: as /predict
                             400 if exc.status == 422 else exc.status)
    response.headers.update(exc.headers)
    return response


for _bp in (bp, open_bp):
    _bp.register_error_handler(ApiError, _error)


def _served(st: State, name: str, version: str | None):
    """The version a route names (404 unknown model or version, 503 none loaded)."""
    if name != st.store.name:
        raise ApiError(404, f"unknown model '{name}'", [f"this server serves '{st.store.name}'"])
    if version is None:
        if st.store.default is None:
            raise ApiError(503, "no model loaded yet")
        return st.store.default
    return routing.pick_version(st, version)


def _outputs_meta(contract: dict) -> list[dict]:
    if contract["task"] == "classification":
        return [v2_tensors.tensor_meta("prediction", "INT64"),
                v2_tensors.tensor_meta("probability", "FP64")]
    return [v2_tensors.tensor_meta(n, "FP64") for n in ("prediction", "lower", "upper")]


def _metadata(name: str, version: str | None):
    st = state()
    served = _served(st, name, version)
    contract = served.contract
    versions = [served.version] if version else sorted(set(st.store.aliases.values()), key=int)
    inputs = [v2_tensors.tensor_meta(c, v2_tensors.DATATYPES[contract["schema"][c]["type"]])
              for c in contract["features"]]
    return json_response({"name": name, "versions": versions, "platform": "caretflow",
                          "inputs": inputs, "outputs": _outputs_meta(contract)})


def _ready(name: str, version: str | None):
    _served(state(), name, version)
    return json_response({"name": name, "ready": True})


def _output_columns(contract: dict, answers: list[dict]) -> dict[str, tuple[str, list]]:
    if contract["task"] == "classification":
        return {"prediction": ("INT64", [a["prediction"] for a in answers]),
                "probability": ("FP64", [a["probability"] for a in answers])}
    return {"prediction": ("FP64", [a["prediction"] for a in answers]),
            "lower": ("FP64", [a["interval"]["lower"] for a in answers]),
            "upper": ("FP64", [a["interval"]["upper"] for a in answers])}


def _requested(req: dict, available: list[str]) -> list[str]:
    wanted = req.get("outputs")
    if wanted is None:
        return available
    if not isinstance(wanted, list) or not all(isinstance(o, dict) for o in wanted):
        raise v2_tensors.bad("'outputs' must be a list of objects with a 'name'")
    names = [o.get("name") for o in wanted]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise v2_tensors.bad(f"unknown outputs {unknown}: the model answers {available}")
    return names


def _infer(name: str, version: str | None):
    st = state()
    _served(st, name, version)
    req = v2_tensors.read_request(request.get_data(cache=False),
                                  request.headers.get(v2_tensors.HEADER_LENGTH))
    params = req.get("parameters") or {}
    if not isinstance(params, dict):
        raise v2_tensors.bad("'parameters' must be an object")
    contract = st.contract
    expected = {c: v2_tensors.DATATYPES[contract["schema"][c]["type"]]
                for c in contract["features"]}
    optional = {c: {"INT64", "BYTES"} for c in st.checker.optional}
    cols = v2_tensors.columns(req["inputs"], expected, optional)
    records = Columns.of(cols)
    answers = scoring.predict(st, batch_of(st, records, version,
                                           params.get("enable_ab_testing", False)))
    out = _output_columns(contract, answers)
    body = {"model_name": name,
            "model_version": ",".join(sorted({a["model_version"] for a in answers}, key=int)),
            "parameters": {"request_id": request_id()},
            "outputs": [v2_tensors.output(n, *out[n]) for n in _requested(req, list(out))]}
    if isinstance(req.get("id"), str):
        body["id"] = req["id"]
    return json_response(body)


@open_bp.get("/v2")
@documented("Open Inference Protocol v2: server metadata")
def server_metadata():
    """Server name, version and protocol extensions."""
    return json_response({"name": "caretflow", "version": "1.0", "extensions": []})


@open_bp.get("/v2/health/live")
@documented("Open Inference Protocol v2: liveness")
def live():
    """200 while the server answers."""
    return json_response({"live": True})


@open_bp.get("/v2/health/ready")
@documented("Open Inference Protocol v2: readiness", status=(200, 503))
def ready():
    """200 when a model serves, 503 until then."""
    is_ready = state().store.ready
    return json_response({"ready": is_ready}, 200 if is_ready else 503)


@open_bp.get("/v2/models/<name>/ready")
@documented("Open Inference Protocol v2: model readiness", errors=(404, 503))
def model_ready(name: str):
    """200 when the model's serving version is loaded."""
    return _ready(name, None)


@open_bp.get("/v2/models/<name>/versions/<version>/ready")
@documented("Open Inference Protocol v2: model version readiness", errors=(404, 409, 503))
def version_ready(name: str, version: str):
    """200 when that version (number or alias) is loaded (it is loaded on demand)."""
    return _ready(name, version)


@bp.get("/v2/models/<name>")
@requires("client")
@documented("Open Inference Protocol v2: model metadata", answer=v2_tensors.ModelMeta,
            errors=(404, 503))
def model_metadata(name: str):
    """Inputs (one per feature) and outputs with names, datatypes and shapes."""
    return _metadata(name, None)


@bp.get("/v2/models/<name>/versions/<version>")
@requires("client")
@documented("Open Inference Protocol v2: model version metadata", answer=v2_tensors.ModelMeta,
            errors=(404, 409, 503))
def version_metadata(name: str, version: str):
    """The metadata of one version (number or alias)."""
    return _metadata(name, version)


@bp.post("/v2/models/<name>/infer")
@requires("client")
@documented("Open Inference Protocol v2: inference", body=v2_tensors.InferIn,
            answer=v2_tensors.InferOut, errors=(404, 409, 503))
def infer(name: str):
    """Score the input tensors with the serving version (or A/B when asked)."""
    return _infer(name, None)


@bp.post("/v2/models/<name>/versions/<version>/infer")
@requires("client")
@documented("Open Inference Protocol v2: inference by one version", body=v2_tensors.InferIn,
            answer=v2_tensors.InferOut, errors=(404, 409, 503))
def version_infer(name: str, version: str):
    """Score the input tensors with that version (number or alias)."""
    return _infer(name, version)
