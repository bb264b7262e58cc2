"""Reading the prediction database: scores by prediction id, labels, counts, recent inputs."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from app.prediction_log.db import labels, prediction_groups, prediction_ids, split_id

OUTPUTS = ("prediction", "probability", "lower", "upper")


def score_at(arm: str, model_name: str, model_version: str, outputs: dict, k: int) -> dict:
    """The score of one record (offset ``k`` in a group's output columns), as a label has it."""
    return {"arm": arm, "model_name": model_name, "model_version": model_version,
            **{key: outputs[key][k] if key in outputs else None for key in OUTPUTS}}


def _positions(group) -> dict[int, int]:
    """Record position in the request -> offset in the group's columns."""
    if group.positions is None:
        return {i: i for i in range(group.size)}
    return {p: k for k, p in enumerate(orjson.loads(group.positions))}


def find_predictions(engine: Engine, ids: list[str]) -> tuple[dict[str, list[dict]], set[str]]:
    """The scores behind prediction ids, and the ids that already have feedback.

    Args:
        engine: the prediction database.
        ids: prediction ids as answered to clients.

    Returns:
        (id -> its scores, the answered one first, then any shadow score: each a dict of
        ``arm``, ``model_name``, ``model_version`` and the outputs; ids that are not an
        answered prediction are absent), and the set of ids with feedback.
    """
    wanted: dict[str, list[tuple[str, int]]] = {}
    for pid in ids:
        parts = split_id(pid)
        if parts is not None:
            wanted.setdefault(parts[0], []).append((pid, parts[1]))
    if not wanted:
        return {}, set()
    g = prediction_groups
    query = (select(g.c.request_id, g.c.arm, g.c.model_name, g.c.model_version, g.c.size,
                    g.c.positions, g.c.outputs)
             .where(g.c.request_id.in_(list(wanted))))
    with engine.connect() as conn:
        groups = list(conn.execute(query))
        done = {r[0] for r in conn.execute(
            select(labels.c.prediction_id).where(labels.c.prediction_id.in_(ids)))}
    found: dict[str, list[dict]] = {}
    for group in sorted(groups, key=lambda r: r.arm == "shadow"):  # answered groups first
        where, outputs = _positions(group), orjson.loads(group.outputs)
        for pid, position in wanted[group.request_id]:
            k = where.get(position)
            if k is None or (group.arm == "shadow" and pid not in found):
                continue
            found.setdefault(pid, []).append(
                score_at(group.arm, group.model_name, group.model_version, outputs, k))
    return found, done


def last_feedback_seq(engine: Engine) -> int:
    """Highest label sequence number (0 when empty)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(labels.c.seq), 0))).scalar())


def labelled(engine: Engine, model_name: str, version: str | None = None, since: float = 0.0,
             limit: int = 100_000) -> list:
    """Labelled scores, newest feedback first (a shadow score has its own row)."""
    where = [labels.c.model_name == model_name, labels.c.created_at >= since]
    if version is not None:
        where.append(labels.c.model_version == version)
    query = (select(labels.c.model_version, labels.c.prediction, labels.c.probability,
                    labels.c.lower, labels.c.upper, labels.c.true_value)
             .where(*where).order_by(labels.c.seq.desc()).limit(limit))
    with engine.connect() as conn:
        return list(conn.execute(query))


def labelled_by_arm(engine: Engine, model_name: str, since: float,
                    limit: int = 200_000) -> dict[tuple[str, str], list]:
    """Labelled scores since ``since`` grouped by ``(version, arm)``."""
    query = (select(labels.c.model_version, labels.c.arm, labels.c.prediction,
                    labels.c.probability, labels.c.lower, labels.c.upper, labels.c.true_value)
             .where(labels.c.model_name == model_name, labels.c.created_at >= since)
             .order_by(labels.c.seq.desc()).limit(limit))
    out: dict[tuple[str, str], list] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            out.setdefault((row.model_version, row.arm), []).append(row)
    return out


def prediction_counts(engine: Engine, model_name: str, since: float) -> dict[str, int]:
    """Scored records per version since ``since`` (shadow scores included)."""
    g = prediction_groups
    query = (select(g.c.model_version, func.sum(g.c.size))
             .where(g.c.model_name == model_name, g.c.created_at >= since)
             .group_by(g.c.model_version))
    with engine.connect() as conn:
        return {v: int(n) for v, n in conn.execute(query)}


def recent_inputs(engine: Engine, model_name: str, version: str, since: float,
                  limit: int = 5000) -> dict[str, list]:
    """Inputs of a version's latest scored records since ``since``, as columns.

    Whole groups are read, newest first, until at least ``limit`` records are in.
    """
    g = prediction_groups
    query = (select(g.c.size, g.c.inputs)
             .where(g.c.model_name == model_name, g.c.model_version == version,
                    g.c.created_at >= since)
             .order_by(g.c.created_at.desc()))
    columns: dict[str, list] = {}
    total = 0
    with engine.connect() as conn:
        for size, inputs in conn.execute(query):
            for name, values in orjson.loads(inputs).items():
                columns.setdefault(name, []).extend(values)
            total += size
            if total >= limit:
                break
    return columns


def feedback_counts(engine: Engine, model_name: str) -> dict[str, int]:
    """Labelled scores per version, all time (shadow scores included)."""
    query = (select(labels.c.model_version, func.count())
             .where(labels.c.model_name == model_name).group_by(labels.c.model_version))
    with engine.connect() as conn:
        return {v: int(n) for v, n in conn.execute(query)}


def unlabelled_outputs(engine: Engine, model_name: str, version: str, since: float,
                       limit: int = 5000) -> dict[str, list]:
    """Outputs of a version's latest answered records since ``since`` that have no label.

    Shadow scores are left out (nobody was answered with them). Whole groups are read,
    newest first, until at least ``limit`` unlabelled records are in.

    Returns:
        Output name (``prediction``, ``probability`` or ``lower`` / ``upper``) -> values.
    """
    g = prediction_groups
    with engine.connect() as conn:
        labelled_ids = set(conn.execute(
            select(labels.c.prediction_id).where(labels.c.model_name == model_name,
                                                 labels.c.model_version == version,
                                                 labels.c.created_at >= since)).scalars())
        groups = conn.execute(
            select(g.c.request_id, g.c.size, g.c.positions, g.c.outputs)
            .where(g.c.model_name == model_name, g.c.model_version == version,
                   g.c.created_at >= since, g.c.arm != "shadow")
            .order_by(g.c.created_at.desc()))
        columns: dict[str, list] = {}
        total = 0
        for group in groups:
            outputs = orjson.loads(group.outputs)
            where = _positions(group)
            ids = prediction_ids(group.request_id, where)
            keep = [k for pid, k in zip(ids, where.values(), strict=True)
                    if pid not in labelled_ids]
            for key in OUTPUTS:
                if key in outputs:
                    columns.setdefault(key, []).extend(outputs[key][k] for k in keep)
            total += len(keep)
            if total >= limit:
                break
    return columns
