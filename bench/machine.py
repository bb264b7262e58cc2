"""The machine and code a benchmark run measured on, read when it runs (for the docs' header)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        kb = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal:")))
    except (OSError, StopIteration, ValueError):
        return None
    return round(kb / 1024 ** 2, 1)


BENCH_OUTPUTS = ("bench/results", "docs/benchmarks.md", "docs/img")  # what a bench run writes


def commit() -> dict:
    """HEAD's commit and whether the tracked files differ from it.

    The bench's own outputs (``BENCH_OUTPUTS``) do not count: a run rewrites them as it goes.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()

    outside = [".", *(f":(exclude){p}" for p in BENCH_OUTPUTS)]
    return {"commit": git("rev-parse", "--short", "HEAD") or "unknown",
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "--", *outside))}


def load() -> list[float]:
    """1, 5 and 15 minute load averages."""
    return [round(v, 2) for v in os.getloadavg()]


def facts() -> dict:
    """CPU, cores, memory, OS, Python, commit, UTC time and load average, now."""
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gb": _memory_gb(),
            "os": f"{platform.system()} {platform.release()}", "arch": platform.machine(),
            "python": platform.python_version(), **commit(),
            "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": load()}
