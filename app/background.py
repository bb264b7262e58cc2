"""Small periodic background threads, one set per worker process, stoppable for tests."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class Periodic:
    """Call ``fn`` every ``interval`` seconds in a daemon thread until stopped.

    Args:
        name: thread name (for logs).
        interval: seconds between the end of one call and the start of the next.
        fn: the work; exceptions are logged and the loop continues.
    """

    def __init__(self, name: str, interval: float, fn):
        self.name, self.interval, self.fn = name, interval, fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Periodic:
        """Start the thread; returns self."""
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.fn()
            except Exception:  # noqa: BLE001 - a background task must survive any failure
                log.exception("background task %s failed", self.name)
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to end and wait for it."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
