"""Promotion by evidence: a retrained version moves only when it beats the champion.

The evidence is the held-out test of the retrain snapshot (the newest production labels),
restricted to rows the current champion never trained on (``evaluate``'s comparison).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from caretflow.modelling.selection import Candidate, Choice, Comparison, rank, strictly_better

PROMOTE = ("ab", "direct")


@dataclass
class Outcome:
    """What a retrain's evaluation decided.

    Attributes:
        choice: the aliases to set (``champion`` / ``challenger`` None: leave as they are).
        decision: ``champion``, ``challenger``, ``kept`` or ``failed_gate``.
        best: the best retrained version (None: none passed the gate).
        comparison: it against the current champion on the holdout (None: not compared).
    """

    choice: Choice
    decision: str
    best: Candidate | None = None
    comparison: Comparison | None = None

    def tags(self) -> dict[str, str]:
        """Tags of the evaluate run (``retrain_decision``, ``retrain_candidate``)."""
        return {"retrain_decision": self.decision,
                "retrain_candidate": self.best.version if self.best else ""}

    def metrics(self) -> dict[str, float]:
        """``retrain_before_*`` (champion), ``retrain_after_*`` and ``retrain_holdout_rows``."""
        if self.comparison is None:
            return {}
        out = {f"retrain_before_{k}": v for k, v in self.comparison.current.metrics.items()}
        out.update({f"retrain_after_{k}": v for k, v in self.comparison.best_metrics.items()})
        return {**out, "retrain_holdout_rows": float(self.comparison.rows)}


def retrain_choice(candidates: list[Candidate], primary: str,
                   compare: Callable[[Candidate], Comparison | None] | None, min_rows: int,
                   promote: str) -> Outcome:
    """The aliases after a retrain, and the evidence behind them.

    Args:
        candidates: the retrained versions, gated on the holdout.
        primary: the primary metric.
        compare: ``evaluate``'s comparison with the current champion.
        min_rows: fewest holdout rows unseen by the champion that count as evidence.
        promote: ``direct`` (the better version becomes champion) or ``ab`` (challenger).

    Returns:
        The outcome; its decision is ``champion``, ``challenger``, ``kept`` (not better, or
        too few rows) or ``failed_gate``. Only ``champion`` and ``challenger`` choices name a
        version; the others leave every alias as it is.
    """
    if promote not in PROMOTE:
        raise ValueError(f"retrain.promote must be one of {PROMOTE}, not {promote!r}")
    ranked = rank(candidates, primary)
    if not ranked:
        return Outcome(Choice(None, None, "no retrained version passed the gate; aliases "
                              "unchanged"), "failed_gate")
    best = ranked[0]
    comparison = compare(best) if compare else None
    if comparison is None:
        return Outcome(Choice(None, None, f"no current champion to compare v{best.version} "
                              "with; aliases unchanged"), "kept", best)
    current, rows = comparison.current, comparison.rows
    if rows < min_rows:
        note = (f"only {rows} holdout rows unseen by champion v{current.version} "
                f"(< {min_rows}): no evidence, aliases unchanged")
        return Outcome(Choice(None, None, note, rows), "kept", best, comparison)
    new, old = _num(comparison.best_metrics, primary), _num(current.metrics, primary)
    where = (f"on {rows} holdout rows unseen by champion v{current.version} "
             f"({primary} {new:.4f} vs {old:.4f})")
    if math.isnan(new) or not (math.isnan(old) or strictly_better(new, old, primary)):
        note = f"retrained v{best.version} is not better {where}: champion kept"
        return Outcome(Choice(None, None, note, rows), "kept", best, comparison)
    if promote == "direct":
        note = f"retrained v{best.version} beats the champion {where}: promoted to champion"
        return Outcome(Choice(best, None, note, rows), "champion", best, comparison)
    note = f"retrained v{best.version} beats the champion {where}: challenger (A/B test decides)"
    return Outcome(Choice(None, best, note, rows), "challenger", best, comparison)


def _num(metrics: dict, name: str) -> float:
    value = metrics.get(name)
    return float("nan") if value is None else float(value)
