"""One request write at a time across the workers, queued in the kernel (``flock``).

SQLite makes a writer that finds the database locked sleep and try again
(``busy_timeout``): the first sleep is 1 ms, the next ones longer, while the other
worker's write it met is far shorter (``bench/batch_phases.py``'s "log write" stage, of a
1000-record request, stays well under a millisecond). Under steady traffic the workers'
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
import weakref
from collections.abc import Iterator

from sqlalchemy.engine import Engine

SUFFIX = ".writelock"
_LOCAL = threading.local()  # engine -> this thread's descriptor or None (flock: per descriptor)


def lock_path(engine: Engine) -> str | None:
    """The lock file of a file-backed SQLite database; None for any other database."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database) + SUFFIX


def open_lock_file(path: str) -> int:
    """A descriptor of the lock file ``path``, created if missing.

    The file is readable by its user alone; programs the process runs do not inherit it.

    Raises:
        OSError: the file cannot be opened or created.
    """
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _open(engine: Engine) -> int | None:
    path = lock_path(engine)
    if path is None:
        return None
    try:
        fd = open_lock_file(path)
    except OSError:  # a read-only folder: SQLite's own locking alone, as without the lock
        return None
    weakref.finalize(engine, os.close, fd)
    return fd


def _descriptor(engine: Engine) -> int | None:
    """The calling thread's descriptor of ``engine``'s lock file, opened once (None: no lock)."""
    fds = getattr(_LOCAL, "fds", None)
    if fds is None:
        fds = _LOCAL.fds = weakref.WeakKeyDictionary()  # gone with its engine
    if engine not in fds:
        fds[engine] = _open(engine)
    return fds[engine]


@contextlib.contextmanager
def exclusive(engine: Engine) -> Iterator[None]:
    """Hold the database's writer lock for the block (nothing for databases without one)."""
    fd = _descriptor(engine)
    if fd is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
