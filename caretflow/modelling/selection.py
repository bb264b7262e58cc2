"""Champion / challenger choice: gate first, then the data set's primary metric."""

from __future__ import annotations

from dataclasses import dataclass, field

from caretflow.metrics import HIGHER_IS_BETTER, passes_gate


@dataclass
class Candidate:
    """One scored model version."""

    version: str
    version_name: str
    run_id: str
    metrics: dict[str, float]
    passed: bool = False
    failures: list[str] = field(default_factory=list)


def apply_gate(candidates: list[Candidate], gate: dict) -> None:
    """Mark each candidate as passing or failing the gate."""
    for c in candidates:
        c.passed, c.failures = passes_gate(c.metrics, gate)


def rank(candidates: list[Candidate], primary: str) -> list[Candidate]:
    """Passing candidates, best first by the primary metric."""
    sign = -1.0 if HIGHER_IS_BETTER[primary] else 1.0
    passing = [c for c in candidates if c.passed]
    return sorted(passing, key=lambda c: (sign * c.metrics[primary], -int(c.version)))


def choose(
    new: list[Candidate], current: Candidate | None, primary: str
) -> tuple[Candidate | None, Candidate | None]:
    """Champion and challenger among the new versions and the current champion.

    The current champion (scored on the same test rows) keeps its place unless a new
    version is strictly better; a version that failed the gate is never chosen.
    """
    pool = {c.version: c for c in new}
    if current is not None and current.passed:
        pool.setdefault(current.version, current)
    ranked = rank(list(pool.values()), primary)
    if current is not None and current.passed and ranked and ranked[0].version != current.version:
        best = ranked[0].metrics[primary]
        if best == current.metrics[primary]:  # a tie keeps the current champion
            ranked.remove(current)
            ranked.insert(0, current)
    champion = ranked[0] if ranked else None
    challenger = ranked[1] if len(ranked) > 1 else None
    return champion, challenger
