"""Peak memory of a process tree (and of extra processes, e.g. Dask workers), and the load.

RSS is summed over the processes every ``every`` seconds; pages shared between processes
count once per process, so the sum is an upper bound of the memory really used.
"""

from __future__ import annotations

import contextlib
import os
import threading

import psutil


def load() -> float:
    """The machine's 1-minute load average."""
    return round(os.getloadavg()[0], 1)


def _rss(proc: psutil.Process, tree: bool) -> int:
    try:
        procs = [proc, *proc.children(recursive=True)] if tree else [proc]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


class PeakRss(threading.Thread):
    """Samples the RSS of ``pid``'s tree and of ``extra`` pids until the block ends."""

    def __init__(self, pid: int, extra=(), every: float = 0.2):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.extra = [psutil.Process(p) for p in extra]
        self.every = every
        self.peak_tree = self.peak_extra = self.peak_total = 0
        self._done = threading.Event()

    def run(self) -> None:
        """Sample until the block ends."""
        while not self._done.is_set():
            tree = _rss(self.root, tree=True)
            extra = sum(_rss(p, tree=False) for p in self.extra)
            self.peak_tree = max(self.peak_tree, tree)
            self.peak_extra = max(self.peak_extra, extra)
            self.peak_total = max(self.peak_total, tree + extra)
            self._done.wait(self.every)

    def __enter__(self) -> PeakRss:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join()

    def mb(self) -> dict:
        """Peaks in MB: the command's tree, the extra processes, and both at once."""
        out = {"command": round(self.peak_tree / 2**20)}
        if self.extra:
            out.update(workers=round(self.peak_extra / 2**20),
                       total=round(self.peak_total / 2**20))
        return out
