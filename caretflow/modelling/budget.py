"""The auto-select's time budget: project each candidate's cost, keep the ones that fit.

Every candidate is timed on two small samples of the same encoded features; the ratio
of the two times gives the exponent ``a`` of ``seconds ~ rows ** a`` and so how fast its
cost grows with the data. From it, the cost of its cross-validation on the whole training
split and of what follows if it wins (the out-of-fold calibration fits and the final fit)
is projected. A candidate projected to take more than ``max_share`` of the time left is
dropped before anything runs; the others are scored cheapest first, and each (or a blend)
starts only if its projection still fits in the time left (PyCaret's ``budget_time`` rule
with the projection added: PyCaret only stops starting models once the budget is spent).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Probe:
    """Two timed fits (fit on ``n`` rows + predict on a validation fold's share of them)."""

    sizes: tuple[int, int]
    seconds: tuple[float, float]


@dataclass(frozen=True)
class Cost:
    """Projected seconds: ``cv`` for scoring the candidate, ``final`` if it wins."""

    cv: float
    final: float
    exponent: float = 1.0

    @property
    def total(self) -> float:
        """Scoring plus finalising."""
        return self.cv + self.final


def growth_exponent(probe: Probe, floor: float = 0.02, low: float = 1.0, high: float = 3.0):
    """Exponent ``a`` of ``seconds ~ rows ** a`` from the two timed fits.

    Times below ``floor`` are timer noise and count as ``floor``. The exponent is clipped to
    ``[low, high]``: no estimator gets cheaper per row as data grows, and fixed start-up
    costs at small sizes would otherwise read as sub-linear growth.
    """
    (n1, n2), (t1, t2) = probe.sizes, probe.seconds
    if n2 <= n1:
        return low
    a = math.log(max(t2, floor) / max(t1, floor)) / math.log(n2 / n1)
    return min(max(a, low), high)


def projected_seconds(probe: Probe, rows: float, exponent: float) -> float:
    """Seconds of one fit + predict on ``rows`` rows, extrapolated from the larger probe."""
    n2, t2 = probe.sizes[1], probe.seconds[1]
    return t2 * (rows / n2) ** exponent


def candidate_cost(
    probe: Probe,
    rows: int,
    folds: int,
    cv_folds: int,
    workers: int,
    encode_seconds: float = 0.0,
    calibration_reused: bool = False,
) -> Cost:
    """Projected cost of scoring a candidate by ``folds``-fold CV and of finalising it.

    Args:
        probe: its two timed fits on encoded features.
        rows: training rows.
        folds: auto-select CV folds (run ``workers`` at a time, on cached encodings).
        cv_folds: calibration folds of the winner (run one after another, each refitting
            the encoders: ``encode_seconds`` per fit) before the final fit on all rows.
        workers: folds scored in parallel.
        encode_seconds: seconds to fit the id encoders on one fold's training rows.
        calibration_reused: the calibration folds are the auto-select's own, so the
            winner's out-of-fold predictions are already made: only the final fit is left.
    """
    a = growth_exponent(probe)
    fold = projected_seconds(probe, rows * (folds - 1) / folds, a)
    cv = fold * math.ceil(folds / max(1, min(workers, folds)))
    calib = 0.0
    if not calibration_reused:
        calib = cv_folds * (projected_seconds(probe, rows * (cv_folds - 1) / cv_folds, a)
                            + encode_seconds)
    final = calib + projected_seconds(probe, rows, a)
    return Cost(cv=cv, final=final + encode_seconds, exponent=a)


def plan(costs: dict[str, Cost], budget_seconds: float, max_share: float):
    """Split candidates into those to score and those dropped before starting.

    Returns:
        ``(kept, dropped)``: kept names in their given order, and name -> reason.
    """
    kept, dropped = [], {}
    limit = max_share * budget_seconds
    for name, cost in costs.items():
        if cost.total > limit:
            dropped[name] = (
                f"projected {cost.total:.0f}s (cost ~ rows^{cost.exponent:.1f}) is more than "
                f"{max_share:.0%} of the {budget_seconds:.0f}s left in the budget"
            )
        else:
            kept.append(name)
    return kept, dropped


def fits(cost: Cost, left_seconds: float, reserve: float = 0.0) -> bool:
    """Whether a candidate can still be scored and, if it wins, finalised in time.

    ``reserve`` is the finalising cost of the best candidate so far, which must stay
    affordable whichever one wins.
    """
    return cost.cv + max(cost.final, reserve) <= left_seconds


class Budget:
    """Wall-clock budget; ``minutes`` None or <= 0 means unlimited.

    It runs from ``started`` (a reading of ``clock``; default: now), e.g. the start of the
    step's process, so that start-up and data loading count against it too.
    """

    def __init__(self, minutes: float | None, clock=time.perf_counter,
                 started: float | None = None):
        self.seconds = float(minutes) * 60 if minutes and minutes > 0 else math.inf
        self._clock = clock
        self._start = clock() if started is None else started

    def elapsed(self) -> float:
        """Seconds since the start."""
        return self._clock() - self._start

    def left(self) -> float:
        """Seconds left (negative once over)."""
        return self.seconds - self.elapsed()


def process_budget(minutes: float | None) -> Budget:
    """A budget running since this process started (its imports and data loading count)."""
    import psutil

    return Budget(minutes, clock=time.time, started=psutil.Process().create_time())


def clock_text(seconds: float) -> str:
    """``1m05s`` style; ``unlimited`` for an infinite budget."""
    if math.isinf(seconds):
        return "unlimited"
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    return f"{sign}{int(seconds // 60)}m{int(seconds % 60):02d}s"


def progress_line(label, index, total, name, metric, score, seconds, budget: Budget) -> str:
    """One progress line: candidate, its CV score and time, elapsed and left of the budget."""
    return (
        f"{label}: [{index}/{total}] {name} cv {metric} {score:.4f} in {seconds:.1f}s | "
        f"elapsed {clock_text(budget.elapsed())}, {clock_text(budget.left())} left of "
        f"{clock_text(budget.seconds)}"
    )
