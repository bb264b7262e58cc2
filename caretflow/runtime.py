"""Garbage-collector settings for a step process (``python -m steps.<step>``).

A step imports MLflow, scikit-learn, skops and matplotlib: millions of objects that live
until the process exits. Python's cyclic collector walks every one of them on each full
collection, including the passes it makes while the interpreter shuts down (about a
second per step process). Frozen objects are left out of those walks. Nothing else
changes: reference counting still frees objects, and atexit handlers (log flushing,
temporary directories) still run.
"""

from __future__ import annotations

import gc


def freeze_imports() -> None:
    """Freeze what start-up created, once per process, before the first job's work.

    Later calls do nothing, so Hydra multirun jobs in one process never pin each
    other's garbage.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()


def freeze_before_exit() -> None:
    """Freeze everything left, so interpreter shutdown does not walk it again."""
    gc.freeze()
