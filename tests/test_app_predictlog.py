"""The prediction log: time-ordered ids, NULL columns left out, indexes, WAL checkpoints."""

from __future__ import annotations

import sqlite3
import time

import pytest

from app import logqueries, predictlog
from app.predicting import new_ids


def _group(ids: list[str], **extra) -> dict:
    return {"id": ids, "created_at": time.time(), "model_name": "churn", "model_version": "3",
            "version_name": "v2_random_forest", "arm": "default",
            "inputs": ['{"Age": 40}'] * len(ids), "prediction": [1] * len(ids),
            "probability": [0.75] * len(ids), **extra}


def test_ids_are_unique_hex_and_grow_with_time():
    first = new_ids(500)
    time.sleep(0.002)
    later = new_ids(500)
    assert len(set(first + later)) == 1000
    assert all(len(i) == 32 and set(i) <= set("0123456789abcdef") for i in first + later)
    assert max(first) < min(later)  # the millisecond prefix orders batches


def test_columns_are_stored_and_all_null_columns_are_left_out(tmp_path):
    engine = predictlog.make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    ids = new_ids(3)
    parents = new_ids(3)
    predictlog.write(engine, [
        _group(ids, routing_key=["15634602", None, "c7"], lower=[None] * 3),
        _group(parents, arm="shadow", parent_id=ids, routing_key=[None] * 3)], [])
    conn = sqlite3.connect(tmp_path / "p.db")
    rows = conn.execute("select id, parent_id, arm, routing_key, prediction, probability, "
                        "lower, upper from predictions order by rowid").fetchall()
    assert rows[:3] == [(i, None, "default", r, 1.0, 0.75, None, None)
                        for i, r in zip(ids, ["15634602", None, "c7"], strict=True)]
    assert rows[3:] == [(p, i, "shadow", None, 1.0, 0.75, None, None)
                        for p, i in zip(parents, ids, strict=True)]


def test_missing_indexes_of_an_older_log_are_added(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("create table predictions (id varchar(32) primary key, parent_id varchar(32), "
                 "created_at float not null, model_name varchar(100) not null, "
                 "model_version varchar(20) not null, version_name varchar(100), "
                 "arm varchar(16) not null, routing_key varchar(200), inputs text not null, "
                 "prediction float not null, probability float, lower float, upper float)")
    conn.commit()
    predictlog.make_engine(f"sqlite:///{path}")
    predictlog.make_engine(f"sqlite:///{path}")  # a second start finds them in place
    names = {r[0] for r in conn.execute("select name from sqlite_master where type='index'")}
    assert {"ix_predictions_parent", "ix_predictions_version_time"} <= names


@pytest.mark.parametrize("autocheckpoint", [True, False])
def test_wal_is_copied_back_by_commit_or_by_the_checkpoint_call(tmp_path, autocheckpoint):
    engine = predictlog.make_engine(f"sqlite:///{tmp_path / 'p.db'}",
                                    autocheckpoint=autocheckpoint)
    for _ in range(30):  # ~30 x 1000 rows: far past SQLite's 1000-page autocheckpoint
        predictlog.write(engine, [_group(new_ids(1000))], [])
    frames, copied = predictlog.checkpoint(engine)
    assert copied == frames
    if autocheckpoint:  # SQLite copied the WAL back each time it passed 1000 pages
        assert frames < 1200
    else:  # nothing was copied on the write path
        assert frames > 1500


def test_feedback_queries_start_from_the_feedback_once_analyzed(tmp_path):
    engine = predictlog.make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    answered = []
    for version in ("1", "2") * 5:
        ids = new_ids(1000)
        answered += ids[:20]
        predictlog.write(engine, [_group(ids, model_version=version),
                                  _group(new_ids(1000), arm="shadow", parent_id=ids)], [])
    now = time.time()
    predictlog.write(engine, [], [{"prediction_id": i, "true_value": 1, "created_at": now,
                                   "source": "inline"} for i in answered])
    p, f = predictlog.predictions, predictlog.feedback

    def plans() -> list[str]:  # through the engine's own (pooled) connections
        out = []
        for where in ([p.c.model_name == "churn"],
                      [p.c.model_name == "churn", f.c.created_at >= now - 3600]):
            query = logqueries._with_feedback([p.c.model_version], *where).element  # noqa: SLF001
            compiled = query.compile(dialect=engine.dialect)
            params = tuple(compiled.params[k] for k in compiled.positiontup)
            with engine.connect() as conn:
                out += [row[-1] for row in conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {compiled}", params)]
        return out

    walks = [line for line in plans() if line.startswith(("SCAN predictions",
                                                          "SEARCH predictions USING INDEX ix_"))]
    assert walks  # unanalysed, SQLite walks every prediction of the model
    predictlog.analyze(engine)
    lookups = [line for line in plans() if "predictions" in line]
    assert lookups and all(line.startswith("SEARCH predictions USING") and
                           ("(id=?)" in line or "(parent_id=?)" in line) for line in lookups)
    # shadow rows (version 3) share their parents' feedback
    assert logqueries.feedback_counts(engine, "churn") == {"1": 100, "2": 100, "3": 200}
    rows = logqueries.labelled(engine, "churn", "1", since=now - 1)
    assert len(rows) == 100 and {r.true_value for r in rows} == {1.0}
