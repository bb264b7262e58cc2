"""Fault: the prediction database is locked/busy. Requests wait or answer 503; no row is
lost, duplicated or half-written."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import create_engine, text

from tests.app_helpers import RECORD, headers, running_app
from tests.services import fresh_database, require_postgres

BATCH = {"records": [RECORD, {**RECORD, "Age": 60}, {**RECORD, "Age": 30}]}


def _send(client, n: int) -> tuple[int, list[int]]:
    """Send ``n`` batches; returns (records answered 200, every status)."""
    answered, codes = 0, []
    for _ in range(n):
        r = client.post("/predict", json=BATCH, headers=headers())
        codes.append(r.status_code)
        if r.status_code == 200:
            answered += len(r.get_json()["predictions"])
        else:
            assert r.status_code == 503 and r.headers["Retry-After"] == "1"
            assert "Traceback" not in r.get_data(as_text=True)
    return answered, codes


def _hold(lock, release, seconds: float) -> threading.Thread:
    def run():
        time.sleep(seconds)
        release()

    lock()
    t = threading.Thread(target=run)
    t.start()
    return t


def test_sqlite_locked_briefly_waits_then_503_past_the_busy_timeout(tiny_registry, tmp_path):
    with running_app(tiny_registry, tmp_path, BACKGROUND=False,
                     DB_BUSY_TIMEOUT_SECONDS=1.0) as app:
        c = app.test_client()
        db = app.extensions["caretflow"].settings.PREDICTION_DB_URL.removeprefix("sqlite:///")
        ok_before, _ = _send(c, 2)
        locker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        started = time.time()
        t = _hold(lambda: locker.execute("BEGIN EXCLUSIVE"), lambda: locker.execute("COMMIT"),
                  0.4)
        waited, codes = _send(c, 1)  # short lock: the request waits and succeeds
        t.join()
        assert codes == [200] and time.time() - started >= 0.4
        locker.execute("BEGIN EXCLUSIVE")  # longer than the busy timeout: 503, nothing stored
        busy, codes = _send(c, 2)
        locker.execute("COMMIT")
        assert codes == [503, 503] and busy == 0
        after, _ = _send(c, 2)
        locker.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = conn.execute("select coalesce(sum(size), 0) from prediction_groups").fetchone()[0]
    assert stored == ok_before + waited + after == 15


@pytest.mark.services
def test_postgres_table_locked_answers_503_then_recovers(tiny_registry, tmp_path):
    require_postgres()
    with fresh_database("caretflow_lock") as sa_url:
        with running_app(tiny_registry, tmp_path, BACKGROUND=False, PREDICTION_DB_URL=sa_url,
                         DB_BUSY_TIMEOUT_SECONDS=1.0) as app:
            c = app.test_client()
            ok_before, _ = _send(c, 2)
            other = create_engine(sa_url)
            conn = other.connect()
            tx = conn.begin()
            conn.execute(text("LOCK TABLE prediction_groups IN ACCESS EXCLUSIVE MODE"))
            t = threading.Thread(target=lambda: (time.sleep(0.4), tx.commit()))
            t.start()
            waited, codes = _send(c, 1)
            t.join()
            assert codes == [200]
            tx = conn.begin()
            conn.execute(text("LOCK TABLE prediction_groups IN ACCESS EXCLUSIVE MODE"))
            busy, codes = _send(c, 2)
            tx.commit()
            assert codes == [503, 503] and busy == 0
            after, _ = _send(c, 2)
            stored = conn.execute(text("select coalesce(sum(size), 0) "
                                       "from prediction_groups")).scalar()
            conn.close()
            other.dispose()
            app.extensions["caretflow"].engine.dispose()
        assert stored == ok_before + waited + after == 15
