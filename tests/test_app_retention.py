"""PREDICTION_RETENTION_DAYS: old prediction groups and labels are purged, recent ones kept."""

from __future__ import annotations

import time

import orjson
import pytest
from sqlalchemy import func, select

from app.prediction_log import db, queries, retention
from app.prediction_log.db import new_request_id, prediction_ids
from app.settings import load_settings


def _scored_and_labelled(engine, created: float, labelled_at: float) -> str:
    rid = new_request_id()
    groups = [{"request_id": rid, "arm": arm, "created_at": created, "model_name": "churn",
               "model_version": v, "version_name": "v2", "size": 1, "positions": None,
               "routing": None, "inputs": '{"Age": [40]}',
               "outputs": orjson.dumps({"prediction": [1], "probability": [0.7]}).decode()}
              for arm, v in (("default", "1"), ("shadow", "2"))]
    db.write(engine, groups, [])
    pid = prediction_ids(rid, [0])[0]
    found, _ = queries.find_predictions(engine, [pid])
    assert db.add_labels(engine, [{"prediction_id": pid, **s, "true_value": 1.0,
                                   "created_at": labelled_at, "source": "api"}
                                  for s in found[pid]])
    return rid


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_purge_deletes_only_what_is_older_than_the_retention(tmp_path, monkeypatch):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    now, day = time.time(), 86400.0
    _scored_and_labelled(engine, now - 40 * day, now - 40 * day)  # both old
    _scored_and_labelled(engine, now - 31 * day, now - 29 * day)  # old score, recent label
    kept = _scored_and_labelled(engine, now - day, now - day)
    monkeypatch.setattr(retention, "BATCH", 1)  # several delete transactions
    purged = retention.purge(engine, 30, now=now)
    assert (purged["prediction_groups"], purged["labels"]) == (4, 2)
    assert _count(engine, db.prediction_groups) == 2 and _count(engine, db.labels) == 4
    with engine.connect() as conn:
        left = set(conn.execute(select(db.prediction_groups.c.request_id)).scalars())
    assert left == {kept}
    assert not any(retention.purge(engine, 30, now=now).values())
    with pytest.raises(ValueError, match="positive"):
        retention.purge(engine, 0)
    assert load_settings().PREDICTION_RETENTION_DAYS is None  # off by default
    monkeypatch.setenv("PREDICTION_RETENTION_DAYS", "30")
    assert load_settings().PREDICTION_RETENTION_DAYS == 30
