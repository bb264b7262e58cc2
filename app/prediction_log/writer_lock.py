"""One request write at a time across the workers, queued in the kernel (``flock``).

SQLite makes a writer that finds the database locked sleep and try again
(``busy_timeout``): the first sleep is 1 ms, the next ones longer, while the other
worker's write it met takes some tens of microseconds. Under steady traffic the workers'
request writes keep meeting, and each meeting costs a sleeping worker a millisecond or
more. An exclusive ``flock`` on a file beside the database, taken before the write, makes
the second writer wait in the kernel instead, and wake as soon as the first is done.

The lock only orders the writers that take it (the request writes and the WAL restart,
``app.prediction_log.db``): SQLite's own locking still guards the data against every
other writer, so a writer that does not take it (feedback, retention, another program)
is as safe as before. A lock holder is never stuck for long: its own SQLite wait is
bounded by ``busy_timeout``, and the kernel releases the lock of a process that dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator

from sqlalchemy.engine import Engine

SUFFIX = ".writelock"
_LOCAL = threading.local()  # path -> this thread's descriptor (flock is per descriptor)


def lock_path(engine: Engine) -> str | None:
    """The lock file of a file-backed SQLite database; None for any other database."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database) + SUFFIX


def _descriptor(path: str) -> int:
    fds = getattr(_LOCAL, "fds", None)
    if fds is None:
        fds = _LOCAL.fds = {}
    fd = fds.get(path)
    if fd is None:
        fd = fds[path] = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return fd


@contextlib.contextmanager
def exclusive(engine: Engine) -> Iterator[None]:
    """Hold the database's writer lock for the block (nothing for databases without one)."""
    path = lock_path(engine)
    if path is None:
        yield
        return
    try:
        fd = _descriptor(path)
    except OSError:  # a read-only folder: SQLite's own locking alone, as without the lock
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
