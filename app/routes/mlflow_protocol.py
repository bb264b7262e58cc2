"""MLflow's scoring protocol: ``POST /invocations``, ``GET /ping``, ``GET /version``.

What ``mlflow models serve`` accepts (``dataframe_split``, ``dataframe_records``,
``instances``, ``inputs`` as JSON, ``text/csv`` and Parquet) is turned into records and
scored exactly as ``/predict`` scores a batch: validated against the serving contract, routed
(optional ``params``: ``version_name``, ``enable_ab_testing``), logged with prediction id =
request id (``X-Request-Id``) + position. The answer is the logged model's pyfunc ``predict``:
``{"predictions": [...]}``, labels at the threshold or the point predictions.
"""

from __future__ import annotations

import csv
import io
import re

import mlflow
import orjson
import pandas as pd
from flask import Blueprint, Response, request
from pydantic import BaseModel

from app import lean, rejections, scoring
from app.auth import requires
from app.batchcheck import Batch, Columns
from app.errors import ApiError, too_many
from app.http import json_response
from app.openapi import documented
from app.schemas import validate
from app.state import State, state

bp = Blueprint("mlflow_protocol", __name__)
open_bp = Blueprint("mlflow_protocol_health", __name__)  # no key, no rate limit
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CSV, JSON, PARQUET = "text/csv", "application/json", "application/vnd.apache.parquet"
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
          404: "RESOURCE_DOES_NOT_EXIST", 409: "INVALID_STATE", 413: "BAD_REQUEST",
          415: "BAD_REQUEST", 422: "INVALID_PARAMETER_VALUE", 429: "REQUEST_LIMIT_EXCEEDED",
          503: "TEMPORARILY_UNAVAILABLE"}


class InvocationsBody(BaseModel):
    """Exactly one of the four input fields; ``params`` optional."""

    dataframe_split: dict | None = None
    dataframe_records: list[dict] | None = None
    instances: list[dict] | dict[str, list] | None = None
    inputs: dict[str, list] | list[dict] | None = None
    params: dict | None = None


class InvocationsOut(BaseModel):
    """The answer of ``mlflow models serve`` for this model."""

    predictions: list[int | float]


def batch_of(st: State, records: list | Columns, version_name=None,
             enable_ab_testing=False, explain: bool = True) -> Batch | None:
    """Records validated as ``/predict`` validates a batch (413, 422 with pydantic's details).

    Args:
        st: the app state.
        records: one dict per record (features, optional routing key / ids / true_value),
            or the same as ``Columns``.
        version_name: the requested version, or None.
        enable_ab_testing: route between champion and challenger.
        explain: when the column-wise checker declines the batch, validate it with pydantic
            (recording a rejection); False answers None instead, having done nothing.

    Returns:
        The batch to score (None: declined, with ``explain`` False).
    """
    too_many(len(records), st.settings.MAX_BATCH, "records")
    body = {"enable_ab_testing": enable_ab_testing}
    if version_name is not None:
        body["version_name"] = version_name
    if isinstance(records, Columns):
        batch = st.checker.check_columns(records.as_dict(), version_name, enable_ab_testing)
    else:
        batch = st.checker.check({"records": records, **body})
    if batch is None and explain:
        body["records"] = records.records() if isinstance(records, Columns) else records
        with rejections.recorded(st, body):
            req = validate(st.requests.batch, body)
        batch = Batch.from_records(req.records, st.checker.keep, req.version_name,
                                   req.enable_ab_testing)
    return batch


def _bad(message: str, hint: str | None = None) -> ApiError:
    return ApiError(400, message, [hint] if hint else [])


def _named_columns(columns: dict) -> list[dict] | Columns:
    """``{"col": [values...]}`` as columns; every column must have the same length."""
    if not all(isinstance(v, list) for v in columns.values()):
        if any(isinstance(v, list | dict) for v in columns.values()):
            raise _bad("give every column as a list, or one record of scalars")
        return [columns]
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise _bad("the length of values for each input/column name are not the same")
    return Columns.of(columns)


def _split_columns(split) -> Columns:
    if not isinstance(split, dict) or "data" not in split or set(split) - {
            "columns", "data", "index"}:
        raise _bad("dataframe_split must be an object with 'columns' and 'data' "
                   "(and optionally 'index')")
    columns, data = split.get("columns"), split["data"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise _bad("dataframe_split needs 'columns': the list of column names")
    if not isinstance(data, list) or data and (  # C loops over the rows, no generator
            set(map(type, data)) != {list} or set(map(len, data)) != {len(columns)}):
        raise _bad("dataframe_split 'data' must be a list of rows, one value per column")
    values = [list(c) for c in zip(*data, strict=True)] if data and columns else [
        [] for _ in columns]
    return Columns(columns, values, len(data))


def _json_records(body) -> tuple[list | Columns, dict]:
    """The records (or columns) and the ``params`` of a JSON body in one of the four formats."""
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object with exactly one of " + ", ".join(FORMATS))
    found = [f for f in FORMATS if f in body]
    if len(found) != 1:
        raise _bad("the body must hold exactly one of " + ", ".join(FORMATS),
                   f"found {len(found)}")
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise _bad("'params' must be an object")
    fmt, data = found[0], body[found[0]]
    if fmt == "dataframe_split":
        return _split_columns(data), params
    if isinstance(data, dict) and fmt != "dataframe_records":
        return _named_columns(data), params
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise _bad(f"'{fmt}' must be a list of records"
                   + ("" if fmt == "dataframe_records" else " or an object of named columns"))
    return data, params


def _cell(text: str, kind: str | None):
    """A CSV cell as JSON would carry it: numbers for numeric columns, else the text."""
    if text == "":
        return None
    if kind in ("int", "float"):
        if _INT.fullmatch(text):
            return int(text)
        if _FLOAT.fullmatch(text):
            return float(text)
    return text


def _csv_records(raw: bytes, schema: dict) -> list[dict]:
    try:
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error):
        raise _bad("malformed CSV body", "send UTF-8 CSV with a header row") from None
    rows = [row for row in rows if row]
    if not rows:
        raise _bad("empty CSV body", "send a header row and at least one record")
    header, kinds = rows[0], [schema.get(c, {}).get("type") for c in rows[0]]
    if any(len(row) != len(header) for row in rows[1:]):
        raise _bad("every CSV row must have one value per header column")
    return [{c: _cell(v, k) for c, v, k in zip(header, row, kinds, strict=True)}
            for row in rows[1:]]


def _parquet_records(raw: bytes) -> list[dict]:
    try:
        frame = pd.read_parquet(io.BytesIO(raw))
    except Exception:  # noqa: BLE001 - any unreadable payload is the client's
        raise _bad("malformed Parquet body") from None
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def _records(st: State) -> tuple[list | Columns, dict]:
    """The request's records and params, per its content type (415 for other types)."""
    mime, options = request.mimetype, request.mimetype_params
    if options.get("charset", "utf-8").lower() != "utf-8" or set(options) - {"charset"}:
        raise ApiError(415, "only UTF-8 is supported, with no content type parameter but "
                       "charset")
    if mime not in (JSON, CSV, PARQUET):
        raise ApiError(415, f"send {JSON}, {CSV} or {PARQUET}")
    raw = request.get_data(cache=False)
    if mime == CSV:
        return _csv_records(raw, st.contract["schema"]), {}
    if mime == PARQUET:
        return _parquet_records(raw), {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _bad("malformed JSON body") from None
    return _json_records(body)


def _routing(params: dict) -> tuple:
    return params.get("version_name"), params.get("enable_ab_testing", False)


def _predictions(st: State, batch: Batch) -> dict:
    return {"predictions": scoring.predictions(st, batch)}


def _lean_answer(st: State, raw: bytes) -> dict | None:
    """``invocations``' answer to a JSON body its checks pass at once (``app.lean``).

    None, having done nothing, for anything else (malformed, rejected or explained
    records): ``invocations`` answers that itself.
    """
    try:
        records, params = _json_records(orjson.loads(raw))
        batch = batch_of(st, records, *_routing(params), explain=False)
    except (orjson.JSONDecodeError, ApiError):
        return None
    return None if batch is None else _predictions(st, batch)


@bp.post("/invocations")
@requires("client")
@documented("MLflow scoring protocol (as `mlflow models serve`)", body=InvocationsBody,
            answer=InvocationsOut, errors=(404, 409, 503))
@lean.answers(_lean_answer)
def invocations():
    """The body as ``mlflow models serve`` takes it (JSON, ``text/csv`` or Parquet).

    Answers ``{"predictions": [...]}`` as the logged model's pyfunc does: class labels at the
    threshold, or point predictions. ``params`` may carry ``version_name`` and
    ``enable_ab_testing``. Prediction ids are the ``X-Request-Id`` header + the record's
    position as 4 hex digits (for ``/feedback``).
    """
    st = state()
    records, params = _records(st)
    return json_response(_predictions(st, batch_of(st, records, *_routing(params))))


@bp.errorhandler(ApiError)
def _mlflow_error(exc: ApiError):
    """Our error body, plus the ``error_code`` and ``message`` MLflow's clients read."""
    response = json_response({"error": exc.error, "details": exc.details, "message": exc.error,
                              "error_code": _CODES.get(exc.status, "BAD_REQUEST")}, exc.status)
    response.headers.update(exc.headers)
    return response


@open_bp.get("/ping")
@documented("MLflow scoring protocol: health", status=(200, 503), media="text/plain")
def ping():
    """200 when a model serves (as ``mlflow models serve``'s ``/ping``), else 503."""
    return Response("\n", 200 if state().store.ready else 503, mimetype="text/plain")


@open_bp.get("/version")
@documented("MLflow scoring protocol: MLflow version", media="text/plain")
def version():
    """The MLflow version whose scoring protocol this server speaks (as text)."""
    return Response(mlflow.__version__, 200, mimetype="text/plain")
