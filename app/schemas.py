"""Request models generated from the served model's contract (pydantic), and their use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from app.errors import ApiError, field_errors

NAME = Annotated[str, Field(min_length=1, max_length=100)]


def _no_bool_or_text(value):
    if isinstance(value, bool | str):
        raise ValueError("must be a number")
    return value


def _feature_type(spec: dict):
    bounds = {k: spec[v] for k, v in (("ge", "min"), ("le", "max")) if spec.get(v) is not None}
    if spec["type"] == "category":
        return Literal[tuple(str(c) for c in spec["categories"])]
    base = int if spec["type"] == "int" else float
    # Field first: the constraints then show up in the OpenAPI document (minimum/maximum);
    # the BeforeValidator still runs before them.
    return Annotated[base, Field(allow_inf_nan=False, **bounds), BeforeValidator(_no_bool_or_text)]


def _truth_type(task: str, target_range=None):
    """0/1 for classification; a finite number (within ``target_range`` if set) otherwise."""
    if task == "classification":
        return Annotated[int, Field(ge=0, le=1), BeforeValidator(_no_bool_or_text)]
    bounds = dict(zip(("ge", "le"), target_range, strict=True)) if target_range else {}
    return Annotated[float, Field(allow_inf_nan=False, **bounds),
                     BeforeValidator(_no_bool_or_text)]


class _Base(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


@dataclass
class RequestModels:
    """The pydantic models of one contract, and what the server needs to use them."""

    features: list[str]
    record: type[BaseModel]
    single: type[BaseModel]
    batch: type[BaseModel]
    feedback: type[BaseModel]
    routing_key: str | None


def build_models(contract: dict, max_batch: int) -> RequestModels:
    """Models for one record, a batch and a feedback item, from a model's contract.

    Args:
        contract: the serving model's contract (``features``, ``schema``, ``task``,
            ``routing_key``, ``id_columns``, ``target_range``).
        max_batch: most records in one batch.

    Returns:
        The request models.
    """
    task, routing = contract["task"], contract.get("routing_key")
    features, schema = list(contract["features"]), contract["schema"]
    truth = _truth_type(task, contract.get("target_range"))
    fields: dict[str, Any] = {col: (_feature_type(schema[col]), ...) for col in features}
    for col in contract.get("id_columns") or []:
        if col not in fields:  # accepted, never stored except the routing key
            text = Annotated[str, Field(max_length=200)]
            fields[col] = (Annotated[int, BeforeValidator(_no_bool_or_text)] | text | None, None)
    if routing and routing not in fields:
        fields[routing] = (int | Annotated[str, Field(max_length=200)] | None, None)
    fields["true_value"] = (truth | None, None)
    record = create_model("Record", __base__=_Base, **fields)
    options = {"version_name": (NAME | None, None), "enable_ab_testing": (bool, False)}
    single = create_model("PredictRecord", __base__=record, **options)
    records = Annotated[list[record], Field(min_length=1, max_length=max_batch)]
    batch = create_model("PredictBatch", __base__=_Base, records=(records, ...), **options)
    feedback = create_model("Feedback", __base__=_Base,
                            prediction_id=(Annotated[str, Field(min_length=1, max_length=64)], ...),
                            true_value=(truth, ...))
    return RequestModels(features, record, single, batch, feedback, routing)


def validate(model: type[BaseModel], data, prefix: tuple = ()):
    """Validate ``data`` or raise a 422 with one entry per bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid request", field_errors(exc, prefix)) from None
