"""Labelled production records of one registered model, read from the prediction log.

A record is labelled when a ``labels`` row names its prediction id; its inputs are in the
``prediction_groups`` row of the same request and arm. A shadow score has its own label row
for the same prediction id: only the answered score counts, so a record is read once.
The tables are reflected by ``caretflow.monitoring.log_reader.LogReader``.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
from sqlalchemy import select

from caretflow.monitoring.log_reader import LogReader

TIME_COLUMN = "event_time"  # when the record was scored (epoch seconds)
LABEL_TIME_COLUMN = "label_time"  # when its true value arrived
CHUNK = 500  # request ids per IN (...) query


def safe_url(url: str) -> str:
    """The database URL without its password (``postgresql://user@host/db``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _offsets(size: int, positions: str | None) -> dict[int, int]:
    """Record position in the request -> offset in the group's columns."""
    if positions is None:
        return {i: i for i in range(size)}
    return {p: k for k, p in enumerate(json.loads(positions))}


def labelled_records(url: str, model: str, window_hours: float,
                     now: float | None = None) -> pd.DataFrame:
    """Every labelled record of ``model`` scored in the last ``window_hours``.

    Args:
        url: SQLAlchemy URL of the prediction database.
        model: registered model name.
        window_hours: how far back a record's scoring time may lie.
        now: the end of the window (epoch seconds; default: now).

    Returns:
        One row per record: its logged inputs (as the server stored them), ``true_value``,
        ``event_time`` (scored at), ``label_time``, ``model_version`` and ``prediction_id``;
        empty when the database holds no prediction log or no such record.
    """
    now = time.time() if now is None else now
    since = now - window_hours * 3600.0
    reader = LogReader(url)
    try:
        labels, groups = reader.table("labels"), reader.table("prediction_groups")
        if labels is None or groups is None:
            return pd.DataFrame()
        query = (select(labels.c.prediction_id, labels.c.arm, labels.c.model_version,
                        labels.c.true_value, labels.c.created_at)
                 .where(labels.c.model_name == model, labels.c.arm != "shadow",
                        labels.c.created_at >= since, labels.c.created_at < now)
                 .order_by(labels.c.seq))
        with reader.engine.connect() as conn:
            found = pd.DataFrame(conn.execute(query).mappings().all())
            if found.empty:
                return pd.DataFrame()
            found = found.drop_duplicates("prediction_id", keep="first")
            found["request_id"] = found["prediction_id"].str[:28]
            found["position"] = found["prediction_id"].str[28:].map(lambda h: int(h, 16))
            ids = found["request_id"].unique().tolist()
            rows = []
            for start in range(0, len(ids), CHUNK):
                part = ids[start:start + CHUNK]
                rows += conn.execute(
                    select(groups.c.request_id, groups.c.arm, groups.c.created_at,
                           groups.c.size, groups.c.positions, groups.c.inputs)
                    .where(groups.c.request_id.in_(part), groups.c.arm != "shadow")).all()
    finally:
        reader.engine.dispose()
    by_key = {(r.request_id, r.arm): r for r in rows}
    parsed: dict[tuple[str, str], dict] = {}
    records = []
    for label in found.itertuples(index=False):
        group = by_key.get((label.request_id, label.arm))
        if group is None or not since <= group.created_at < now:
            continue
        k = _offsets(group.size, group.positions).get(label.position)
        if k is None:
            continue
        key = (label.request_id, label.arm)
        inputs = parsed.get(key) or parsed.setdefault(key, json.loads(group.inputs))
        record = {name: values[k] for name, values in inputs.items()}
        record.update(true_value=label.true_value, event_time=group.created_at,
                      label_time=label.created_at, model_version=str(label.model_version),
                      prediction_id=label.prediction_id)
        records.append(record)
    return pd.DataFrame(records)
