"""One leader per instance for the background work every worker would repeat (flock)."""

from __future__ import annotations

import subprocess
import sys
import time

from app.leadership import FILE, Leadership

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def test_one_of_two_leads_and_the_other_takes_over_when_it_stops(tmp_path):
    first, second = Leadership(str(tmp_path)), Leadership(str(tmp_path))
    assert first.held() and first.held()
    assert not second.held()
    runs = []
    body = second.leading(lambda: runs.append(1))
    body()
    assert runs == []
    first.stop()  # the app stopped: its lock is released
    assert second.held()
    body()
    assert runs == [1]
    assert not first.held()
    second.stop()


def test_another_process_leads_until_it_dies(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / FILE)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        lead = Leadership(str(tmp_path))
        assert not lead.held()
    finally:
        holder.kill()
        holder.wait(10)
    deadline = time.monotonic() + 5
    while not lead.held() and time.monotonic() < deadline:  # the kernel released its lock
        time.sleep(0.05)
    assert lead.held()
    lead.stop()


def test_a_lone_process_always_leads_and_an_unusable_directory_does_not_stop_the_work(
        tmp_path, caplog):
    alone = Leadership(None)
    assert alone.held()
    alone.stop()
    assert alone.held()
    missing = Leadership(str(tmp_path / "gone"))
    assert missing.held()  # the work goes on in this worker, as it did without leaders
    assert "cannot take the leader lock" in caplog.text
