"""The prediction log: request ids, one row per scored group, labels, WAL checkpoints."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.prediction_log import db, queries, writer_lock
from app.prediction_log.db import new_request_id, prediction_ids, split_id
from tests.services import fresh_database, require_postgres


def _group(request_id: str, n: int, **extra) -> dict:
    row = {"request_id": request_id, "arm": "default", "created_at": time.time(),
           "model_name": "churn", "model_version": "3", "version_name": "v2_random_forest",
           "size": n, "positions": None, "routing": None,
           "inputs": orjson.dumps({"Age": list(range(n))}).decode(),
           "outputs": orjson.dumps({"prediction": [1] * n,
                                    "probability": [i / n for i in range(n)]}).decode()}
    return {**row, **extra}


def test_ids_are_unique_hex_grow_with_time_and_split_back():
    first = [new_request_id() for _ in range(200)]
    time.sleep(0.002)
    later = new_request_id()
    assert len(set(first)) == 200 and max(first) < later  # the millisecond prefix orders them
    ids = prediction_ids(later, range(65536))
    assert all(len(i) == 32 and set(i) <= set("0123456789abcdef") for i in ids)
    assert split_id(ids[0]) == (later, 0) and split_id(ids[-1]) == (later, 65535)
    assert prediction_ids(later, [7, 300, 2]) == [ids[7], ids[300], ids[2]]
    assert ids[300] == f"{later}012c"
    with pytest.raises(IndexError):  # a position a prediction id has no digits for
        prediction_ids(later, [65536])
    for bad in ("", "x" * 32, ids[0][:31], ids[0] + "0", ids[0].upper(), 42, None):
        assert split_id(bad) is None


def test_feedback_finds_the_answered_score_and_its_shadow(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    rid = new_request_id()
    champion = _group(rid, 2, arm="champion", positions="[0, 2]")
    challenger = _group(rid, 1, arm="challenger", model_version="4", positions="[1]",
                        outputs='{"prediction": [0], "probability": [0.25]}')
    shadow = _group(rid, 2, arm="shadow", model_version="4", positions="[0, 2]",
                    outputs='{"prediction": [0, 0], "probability": [0.1, 0.2]}')
    db.write(engine, [champion, challenger, shadow], [])
    ids = prediction_ids(rid, range(4))
    found, done = queries.find_predictions(engine, [*ids, "not-an-id", "0" * 32])
    assert set(found) == set(ids[:3]) and done == set()  # position 3 was never scored
    assert [(s["arm"], s["model_version"], s["probability"]) for s in found[ids[2]]] == [
        ("champion", "3", 0.5), ("shadow", "4", 0.2)]
    assert [(s["arm"], s["prediction"], s["lower"]) for s in found[ids[1]]] == [
        ("challenger", 0, None)]
    rows = [{"prediction_id": ids[2], **s, "true_value": 1.0, "created_at": time.time(),
             "source": "api"} for s in found[ids[2]]]
    assert db.add_labels(engine, rows)
    assert not db.add_labels(engine, rows[:1])  # a duplicate changes nothing
    assert queries.find_predictions(engine, [ids[2]])[1] == {ids[2]}
    assert queries.feedback_counts(engine, "churn") == {"3": 1, "4": 1}
    assert queries.last_feedback_seq(engine) == 2
    assert queries.prediction_counts(engine, "churn", 0) == {"3": 2, "4": 3}


def test_recent_inputs_read_whole_groups_newest_first(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    for start in (0, 100, 200):
        db.write(engine, [_group(new_request_id(), 3, created_at=time.time() + start,
                                         inputs=f'{{"Age": [{start}, {start + 1}, null]}}')],
                         [])
    assert queries.recent_inputs(engine, "churn", "3", 0, limit=4) == {
        "Age": [200, 201, None, 100, 101, None]}
    assert queries.recent_inputs(engine, "churn", "9", 0) == {}


@pytest.mark.parametrize("autocheckpoint", [True, False])
def test_wal_is_copied_back_by_commit_or_by_the_checkpoint_call(tmp_path, autocheckpoint):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'p.db'}",
                                    autocheckpoint=autocheckpoint)
    big = orjson.dumps({"Age": list(range(30_000))}).decode()  # ~200 kB: ~50 pages a write
    for _ in range(40):  # past SQLite's 1000-page autocheckpoint
        db.write(engine, [_group(new_request_id(), 1, inputs=big)], [])
    frames, copied = db.checkpoint(engine)
    assert copied == frames
    if autocheckpoint:  # SQLite copied the WAL back each time it passed 1000 pages
        assert frames < 1200
    else:  # nothing was copied on the write path
        assert frames > 1500


def _wal_high_water(path, restart_frames: int) -> int:
    """The WAL file's size after steady writes from another thread during 25 checkpoints."""
    engine = db.make_engine(f"sqlite:///{path}", autocheckpoint=False)
    stop = threading.Event()

    def keep_writing():
        writer = db.make_engine(f"sqlite:///{path}", autocheckpoint=False)
        while not stop.is_set():  # a steady stream, as from busy workers
            db.write(writer, [_group(new_request_id(), 1)], [])
            time.sleep(0.0005)

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        for _ in range(25):
            time.sleep(0.03)
            db.checkpoint(engine, restart_frames)
    finally:
        stop.set()
        thread.join()
    return os.path.getsize(f"{path}-wal")


def test_checkpoint_lets_the_wal_start_over_under_steady_writes(tmp_path):
    # Passive copies alone: every write lands during a copy, the WAL never starts over.
    passive_only = _wal_high_water(tmp_path / "a.db", restart_frames=10**9)
    bounded = _wal_high_water(tmp_path / "b.db", restart_frames=db.RESTART_FRAMES // 10)
    assert passive_only > 4 * bounded, (passive_only, bounded)
    # What the bounded one stored is all there and readable.
    engine = db.make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(db.prediction_groups)).scalar() > 0
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_labelled_reads_labels_through_their_index_once_analyzed(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    now = time.time()
    rows = [{"prediction_id": f"{i:032x}", "arm": "default", "model_name": "churn",
             "model_version": str(1 + i % 2), "true_value": 1.0, "prediction": 1.0,
             "probability": 0.5, "lower": None, "upper": None,
             "created_at": now - i, "source": "api"} for i in range(2000)]
    db.write(engine, [], rows)
    db.analyze(engine)
    labelled = queries.labelled(engine, "churn", "1", since=now - 99.5)
    assert len(labelled) == 50 and {r.model_version for r in labelled} == {"1"}
    conn = sqlite3.connect(tmp_path / "p.db")
    plan = conn.execute("EXPLAIN QUERY PLAN SELECT true_value FROM labels WHERE model_name=? "
                        "AND model_version=? AND created_at>=?", ("churn", "1", now)).fetchall()
    assert any("USING INDEX ix_labels_version_time" in row[-1] for row in plan)


def test_max_batch_stays_within_the_positions_an_id_can_carry():
    from app.settings import load_settings

    assert load_settings({"MAX_BATCH": "65536"}).MAX_BATCH == 65536
    for bad in (65537, 0):
        with pytest.raises(ValueError, match="MAX_BATCH must be between 1 and 65536"):
            load_settings({"MAX_BATCH": bad})



def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def _write_keys_and_recover(engine) -> None:
    rid = new_request_id()
    label = {"prediction_id": f"{rid}0000", "true_value": 1.0, "created_at": time.time(),
             "source": "inline", "arm": "champion", "model_name": "churn",
             "model_version": "3", "prediction": 1.0, "probability": 0.7}
    # Each given value is stored; a column the rows do not name is NULL.
    db.write(engine, [_group(rid, 1, arm="champion"),
                      _group(rid, 1, arm="shadow", version_name=None)],
             [label, {**label, "arm": "shadow", "probability": 0.6}])
    with engine.connect() as conn:
        stored = conn.execute(db.labels.select().order_by(db.labels.c.seq)).mappings().all()
        groups = conn.execute(db.prediction_groups.select()).mappings().all()
    assert [(r["arm"], r["probability"], r["lower"]) for r in stored] == [
        ("champion", 0.7, None), ("shadow", 0.6, None)]
    assert {(g["arm"], g["version_name"]) for g in groups} == {
        ("champion", "v2_random_forest"), ("shadow", None)}
    # A duplicate label fails as SQLAlchemy's error, after its group was inserted: the
    # transaction is rolled back whole.
    with pytest.raises(IntegrityError):
        db.write(engine, [_group(new_request_id(), 1)], [label])
    assert (_count(engine, db.labels), _count(engine, db.prediction_groups)) == (2, 2)
    db.write(engine, [_group(new_request_id(), 1)], [])  # the next write goes through
    assert _count(engine, db.prediction_groups) == 3


def test_sqlite_write_stores_every_key_and_recovers_from_a_failed_write(tmp_path):
    _write_keys_and_recover(db.make_engine(f"sqlite:///{tmp_path / 'p.db'}"))


@pytest.mark.services
def test_postgres_write_stores_every_key_and_recovers_from_a_failed_write():
    require_postgres()
    with fresh_database("caretflow_write") as url:
        engine = db.make_engine(url)
        try:
            _write_keys_and_recover(engine)
        finally:
            engine.dispose()


def test_writes_queue_behind_the_writer_lock_and_none_is_lost(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    path = writer_lock.lock_path(engine)
    assert path == str(tmp_path / "p.db") + writer_lock.SUFFIX
    held, done = threading.Event(), threading.Event()
    release = threading.Event()

    def holder():
        with writer_lock.exclusive(engine):
            held.set()
            release.wait(10)

    def writer():
        db.write(engine, [_group(new_request_id(), 1)], [])
        done.set()

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    assert held.wait(10)
    threads.append(threading.Thread(target=writer))
    threads[1].start()
    assert not done.wait(0.3)  # the write waits for the lock (another thread, own descriptor)
    release.set()
    assert done.wait(10)
    for t in threads:
        t.join()
    assert os.path.exists(path)

    def many(n: int) -> None:
        for _ in range(n):
            db.write(engine, [_group(new_request_id(), 2)], [])

    writers = [threading.Thread(target=many, args=(50,)) for _ in range(4)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    assert _count(engine, db.prediction_groups) == 1 + 4 * 50


def test_no_writer_lock_without_a_database_file():
    for url in ("sqlite://", "sqlite:///:memory:"):
        engine = db.make_engine(url)
        assert writer_lock.lock_path(engine) is None
        with writer_lock.exclusive(engine):  # nothing to take: the block just runs
            pass
