"""What a logged model expects and answers: its contract, carried inside the model.

Training writes it from the data set config (``from_dataset``); everything that serves or
scores a model (the server, batch scoring, monitoring) reads it back from the model, never
from ``conf/``. It is a plain dict of JSON types, so it also travels in the MLmodel file's
``metadata`` and in registry tags without loading the model.

Keys:
    dataset: the registered model name (``registry.name``; by default the data set's).
    task: ``classification`` or ``regression``.
    target: the target column.
    features: the input columns, in order.
    schema: column -> ``{type, min, max, categories}`` (types ``int``, ``float``,
        ``category``; every feature is required).
    routing_key: column that keeps a caller on one A/B arm (or None).
    id_columns: identifier columns a caller may send (never features).
    personal_columns: columns never stored or logged.
    target_range: ``[low, high]`` of regression targets (or None).
    decision: classification ``{"threshold": t}``; regression
        ``{"interval_method": ..., "interval_level": ...}``.
    primary_metric: the metric the champion is chosen by.
    gate: metric -> ``{min, max}`` a version must meet (tested on the held-out split, judged
        live by ``/model_health``).
    health: ``{window_hours, min_feedback}`` for live health.
    recommender: ``{user, item}`` for user x item data (or None).
    schema_digest: sha256 of task, target, features and schema (``schema_digest``).
"""

from __future__ import annotations

import hashlib
import json

CONTRACT_KEYS = (
    "dataset", "task", "target", "features", "schema", "routing_key", "id_columns",
    "personal_columns", "target_range", "decision", "primary_metric", "gate", "health",
    "recommender", "schema_digest",
)
TASKS = ("classification", "regression")


class ContractError(ValueError):
    """A model's contract is missing, malformed, or differs from what it must match."""


def schema_digest(task: str, target: str, features: list[str], schema: dict) -> str:
    """A digest of what a caller must send and what the answer means.

    Two versions with the same digest accept the same records and answer the same kind of
    prediction, so they can sit under one registered name and share one A/B test.
    """
    payload = {"task": task, "target": target, "features": list(features),
               "schema": {c: schema[c] for c in features}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def from_dataset(ds: dict, decision: dict) -> dict:
    """The contract of a model trained on data set config ``ds`` (a resolved plain dict).

    Args:
        ds: the data set config (``conf/dataset/*.yaml``, resolved).
        decision: the fitted decision rule (threshold, or interval method and level).

    Returns:
        The contract (JSON types only).
    """
    task = ds["task"]
    if task not in TASKS:
        raise ContractError(f"unknown task {task!r}: expected one of {TASKS}")
    schema = {c: dict(spec) for c, spec in ds["schema"].items()}
    features = list(schema)
    gate = {m: dict(b) for m, b in (ds.get("gate") or {}).items()}
    target_range = ds.get("target_range")
    contract = {
        "dataset": ds["name"],
        "task": task,
        "target": ds["target"],
        "features": features,
        "schema": schema,
        "routing_key": ds.get("routing_key"),
        "id_columns": list(ds.get("id_columns") or []),
        "personal_columns": list(ds.get("personal_columns") or []),
        "target_range": list(target_range) if target_range is not None else None,
        "decision": dict(decision),
        "primary_metric": ds["primary_metric"][task],
        "gate": gate,
        "health": dict(ds.get("health") or {"window_hours": 24, "min_feedback": 20}),
        "recommender": dict(ds["recommender"]) if ds.get("recommender") else None,
        "schema_digest": schema_digest(task, ds["target"], features, schema),
    }
    return json.loads(json.dumps(contract))  # plain JSON types (no numpy, no OmegaConf)


def check(contract) -> dict:
    """``contract`` if it is complete, else a ``ContractError`` naming what is missing."""
    if not isinstance(contract, dict):
        raise ContractError("the model carries no contract (trained by an older caretflow?)")
    missing = [k for k in CONTRACT_KEYS if k not in contract]
    if missing:
        raise ContractError(f"the model's contract lacks {missing}")
    return contract


def same_contract(a: dict, b: dict) -> list[str]:
    """Why two contracts cannot share a registered name (empty when they can)."""
    out = []
    if a["task"] != b["task"]:
        out.append(f"task {a['task']!r} vs {b['task']!r}")
    if a["schema_digest"] != b["schema_digest"]:
        out.append(f"input schema digest {a['schema_digest'][:12]} vs {b['schema_digest'][:12]}")
    return out


def registry_tags(contract: dict) -> dict[str, str]:
    """Registry tags that let a caller compare contracts without loading a model."""
    return {"task": contract["task"], "schema_digest": contract["schema_digest"]}
