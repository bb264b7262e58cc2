"""Retrain snapshot: labelled records read from a real prediction log, schema, policies, split."""

from __future__ import annotations

import time

import orjson
import pandas as pd
import pytest

from app.prediction_log import db, queries
from app.prediction_log.db import new_request_id, prediction_ids
from caretflow.retrain import snapshot
from caretflow.retrain.feedback import labelled_records, safe_url
from caretflow.retrain.snapshot import SnapshotError
from caretflow.retrain.timesplit import time_split

CONTRACT = {
    "task": "classification", "target": "Exited", "features": ["Age", "Geography"],
    "schema": {"Age": {"type": "int", "min": 18, "max": 100},
               "Geography": {"type": "category", "categories": ["France", "Spain"]}},
}
BASE = pd.DataFrame({"Age": [30, 40, 50, 60], "Geography": ["France", "Spain"] * 2,
                     "Exited": [0, 1, 0, 1], "Tenure": [1, 2, 3, 4]})


def _serve(engine, inputs: dict, truths: list, arms=("default",), created=None) -> None:
    """Score one request per arm (as /predict logs it), then label every record (/feedback)."""
    rid, n = new_request_id(), len(truths)
    created = time.time() - 60 if created is None else created
    groups = [{"request_id": rid, "arm": arm, "created_at": created, "model_name": "churn",
               "model_version": "1" if arm != "shadow" else "2", "version_name": "v2",
               "size": n, "positions": None, "routing": None,
               "inputs": orjson.dumps(inputs).decode(),
               "outputs": orjson.dumps({"prediction": [0] * n, "probability": [0.3] * n}).decode()}
              for arm in arms]
    db.write(engine, groups, [])
    ids = prediction_ids(rid, range(n))
    found, _ = queries.find_predictions(engine, ids)
    rows = [{"prediction_id": pid, **score, "true_value": truth, "created_at": created + 1,
             "source": "api"} for pid, truth in zip(ids, truths, strict=True)
            for score in found[pid]]
    assert db.add_labels(engine, rows)


@pytest.fixture
def log_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    engine = db.make_engine(url)
    _serve(engine, {"Age": [25, 130, 35, None], "Geography": ["Spain", "France", "Mars", "Spain"]},
           [1, 0, 1, 0])
    _serve(engine, {"Age": [45, 55], "Geography": ["France", "Spain"]}, [0, 1],
           arms=("default", "shadow"))
    _serve(engine, {"Age": [65], "Geography": ["France"]}, [1],
           created=time.time() - 10 * 86400)  # outside a 24 h window
    engine.dispose()
    return url


def test_records_read_once_with_shadow_and_failures_counted_by_reason(log_url):
    records = labelled_records(log_url, "churn", window_hours=24)
    assert len(records) == 6  # the shadow label of the 2-record request is not a second row
    assert set(records["model_version"]) == {"1"}
    rows, failures = snapshot.production_rows(records, CONTRACT)
    assert failures == {"Age: above max": 1, "Geography: unknown category": 1, "Age: missing": 1}
    assert sorted(rows["Age"]) == [25, 45, 55] and rows["Exited"].dtype == "int64"
    assert rows["event_time"].notna().all()
    assert len(labelled_records(log_url, "churn", window_hours=24 * 30)) == 7
    assert labelled_records(log_url, "ratings", window_hours=24).empty


def test_policies_append_window_replace(log_url):
    records = labelled_records(log_url, "churn", window_hours=24)
    where = "churn, last 24 h"
    same_input = pd.DataFrame({"Age": [45], "Geography": ["France"], "Exited": [1],
                               "Tenure": [0]})  # also a production record: replaced by it
    append = snapshot.build(records, pd.concat([BASE, same_input]), CONTRACT, "append", where)
    assert append.counts == {"production": 3, "base": 4, "base_replaced": 1, "base_dropped": 0,
                             "labelled": 6, "rejected": 3}
    assert list(append.frame.columns) == ["Age", "Geography", "Exited", "event_time", "origin"]
    assert append.frame.groupby("origin").size().to_dict() == {"base": 4, "production": 3}
    assert append.frame.loc[append.frame.origin == "base", "event_time"].isna().all()
    window = snapshot.build(records, BASE, CONTRACT, "window", where, base_age_hours=48,
                            half_life_hours=48)
    assert (window.counts["base"], window.counts["base_dropped"]) == (2, 2)
    gone = snapshot.build(records, BASE, CONTRACT, "window", where, base_age_hours=48,
                          max_age_hours=24)
    assert gone.counts["base"] == 0 and len(gone.frame) == 3
    replace = snapshot.build(records, BASE, CONTRACT, "replace", where, min_rows=3)
    assert set(replace.frame["origin"]) == {"production"} and len(replace.frame) == 3
    with pytest.raises(SnapshotError, match="at least 4 valid production rows.*holds 3"):
        snapshot.build(records, BASE, CONTRACT, "replace", where, min_rows=4)
    with pytest.raises(SnapshotError, match="unknown policy"):
        snapshot.build(records, BASE, CONTRACT, "latest", where)


def test_empty_window_and_all_rejected_are_refused(log_url, tmp_path):
    records = labelled_records(log_url, "churn", window_hours=1 / 3600, now=time.time() - 3600)
    with pytest.raises(SnapshotError, match=r"empty window: no labelled production record"):
        snapshot.build(records, BASE, CONTRACT, "append", "churn, last 1 s")
    bad = labelled_records(log_url, "churn", window_hours=24).assign(Age=500)
    with pytest.raises(SnapshotError, match=r"all 6 labelled records.*Age: above max"):
        snapshot.build(bad, BASE, CONTRACT, "append", "churn")
    empty_db = f"sqlite:///{tmp_path / 'none.db'}"
    assert labelled_records(empty_db, "churn", window_hours=24).empty


def test_time_split_holds_out_the_newest_production_rows_and_write_digests(log_url, tmp_path):
    records = labelled_records(log_url, "churn", window_hours=24)
    snap = snapshot.build(records, BASE, CONTRACT, "append", "churn")
    train, test = time_split(snap.frame, "event_time", 0.5)
    assert len(test) == 2 and set(test["origin"]) == {"production"}
    assert test["event_time"].min() >= train["event_time"].max()
    assert (train["origin"] == "base").sum() == 4
    with pytest.raises(ValueError, match="no row has a value"):
        time_split(BASE.assign(event_time=float("nan")), "event_time", 0.2)
    first = snapshot.write(snap, tmp_path / "snap", "churn")
    again = snapshot.write(snapshot.build(records, BASE, CONTRACT, "append", "churn"),
                           tmp_path / "snap", "churn")
    assert first.digest == again.digest and first.path.name.startswith("churn-")
    assert pd.read_parquet(first.path).equals(snap.frame)
    assert safe_url("postgresql://u:secret@db:5432/p") == "postgresql://u@db:5432/p"
