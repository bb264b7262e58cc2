"""The watcher's memory and its cross-process lock, in a state directory.

``<dir>/<model>.json`` holds the :class:`~caretflow.watcher.decision.WatchState` (written
atomically); ``<dir>/<model>.retrain.lock`` is held with ``fcntl.flock`` for as long as a
retrain runs, by the watcher and by the retrain process it starts (the descriptor is inherited),
so no second watcher, cron job or loop starts another one meanwhile, and a watcher killed
mid-retrain does not free the lock before its retrain ends. ``<dir>/<model>.state.lock``
serialises the read-modify-write of one check.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

from caretflow.watcher.decision import WatchState


class StateDir:
    """State and locks of one registered model's watcher.

    Args:
        root: the state directory (created).
        model: the registered model name.
    """

    def __init__(self, root: Path | str, model: str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / f"{model}.json"
        self.lock_path = self.root / f"{model}.retrain.lock"
        self._state_lock = self.root / f"{model}.state.lock"

    def load(self) -> WatchState:
        """The persisted state (a fresh one when there is none yet)."""
        if not self.path.exists():
            return WatchState()
        return WatchState.from_dict(json.loads(self.path.read_text()))

    def save(self, state: WatchState) -> None:
        """Write the state atomically (a reader never sees half a file)."""
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state.to_dict(), indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def checking(self):
        """Hold the state lock (blocking) for one check's read-modify-write."""
        with open(self._state_lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def try_lock_retrain(self, owner: bool = True) -> int | None:
        """Take the retrain lock without waiting: its descriptor, or None when it is held.

        Args:
            owner: write this process id into the lock file (a probe does not).
        """
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if owner:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        return fd

    def retrain_running(self) -> bool:
        """Whether some process holds the retrain lock now."""
        fd = self.try_lock_retrain(owner=False)
        if fd is None:
            return True
        self.unlock(fd)
        return False

    @staticmethod
    def unlock(fd: int) -> None:
        """Release a lock taken by :meth:`try_lock_retrain`."""
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
