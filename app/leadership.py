"""One worker of a server instance runs the background work that is the same in every worker.

The observer (gauges, alerts, the A/B verdict, promotion), the planner statistics and the
retention purge compute the same thing from the shared prediction log in every worker: with
``WORKERS`` workers they cost ``WORKERS`` times what one of them does. Under gunicorn the
workers of an instance share ``PROMETHEUS_MULTIPROC_DIR`` (``app/gunicorn.conf.py``), so an
exclusive, non-blocking ``flock`` on a file there makes one of them the leader. The kernel
releases the lock when its holder exits; another worker takes it over at its next attempt
(within one interval of the loop). Without that directory the process is the only one and
always leads.

Each attempt costs one system call; the descriptor is opened in the worker, at the first
attempt (a descriptor inherited across ``fork`` would share its lock with the parent).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading

from app.prediction_log.writer_lock import open_lock_file

log = logging.getLogger(__name__)
FILE = "caretflow-leader.lock"


class Leadership:
    """Whether this process leads its instance's background work.

    Args:
        directory: the directory the instance's workers share (``PROMETHEUS_MULTIPROC_DIR``);
            None: a single process, which always leads.
    """

    def __init__(self, directory: str | None):
        self.path = os.path.join(directory, FILE) if directory else None
        self._fd: int | None = None
        self._held = self.path is None
        self._lock = threading.Lock()  # several loops of one worker ask

    def held(self) -> bool:
        """True when this process leads (taking the lead when nobody holds it)."""
        if self._held:
            return True
        with self._lock:
            if self._held:
                return True
            try:
                if self._fd is None:
                    self._fd = open_lock_file(self.path)
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # another worker leads
            except OSError as exc:  # no usable lock file: lead, as a lone process would
                log.warning("cannot take the leader lock %s (%s): this worker runs the "
                            "shared background work too", self.path, exc)
            else:
                log.info("this worker (pid %d) leads the instance's background work",
                         os.getpid())
            self._held = True
            return True

    def leading(self, fn):
        """``fn`` as a loop body that runs only while this process leads."""

        def body() -> None:
            if self.held():
                fn()

        return body

    def stop(self) -> None:
        """Give the lead up (the app stops): another worker may take it."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)  # releases the flock
                self._fd = None
            self._held = self.path is None
