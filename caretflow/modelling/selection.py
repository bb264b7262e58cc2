"""Champion / challenger choice: the gate on the test split, then the cross-validated metric.

The held-out test split only gates and reports: among the versions that pass the gate, the
one with the best cross-validated primary metric on the training split (``cv_<metric>`` of
its training run) is the new best, the next one the runner-up. A current champion from
another pipeline run is compared with the new best on the test rows it never trained on
(``unseen_rows``); below ``MIN_COMPARISON_ROWS`` such rows the gate alone decides.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from caretflow.metrics import HIGHER_IS_BETTER, passes_gate

# Fewest test rows unseen by the current champion that can overrule the new best.
MIN_COMPARISON_ROWS = 200


@dataclass
class Candidate:
    """One scored model version.

    Attributes:
        metrics: test metrics (gate and report only).
        cv: cross-validated metrics of its training run (the choice).
    """

    version: str
    version_name: str
    run_id: str
    metrics: dict[str, float]
    cv: dict[str, float] = field(default_factory=dict)
    passed: bool = False
    failures: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    """The new best against the current champion on test rows that champion never saw.

    Attributes:
        current: the current champion; ``metrics`` and ``passed`` on those rows.
        rows: how many test rows the current champion never trained on.
        best_metrics: the new best's metrics on the same rows.
    """

    current: Candidate
    rows: int
    best_metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Choice:
    """Outcome of the choice, with one sentence on how the current champion was handled."""

    champion: Candidate | None
    challenger: Candidate | None
    note: str
    comparison_rows: int | None = None


def apply_gate(candidates: list[Candidate], gate: dict) -> None:
    """Mark each candidate passed/failed against the gate on its test metrics."""
    for c in candidates:
        c.passed, c.failures = passes_gate(c.metrics, gate)


def _value(metrics: dict[str, float], name: str) -> float | None:
    value = metrics.get(name)
    return None if value is None or math.isnan(value) else float(value)


def rank(candidates: list[Candidate], primary: str) -> list[Candidate]:
    """Passing candidates, best first by the cross-validated primary metric.

    A candidate without that CV metric ranks last; ties go to the newer version.
    """
    sign = -1.0 if HIGHER_IS_BETTER[primary] else 1.0

    def key(c: Candidate):
        value = _value(c.cv, primary)
        return (value is None, sign * value if value is not None else 0.0, -int(c.version))

    return sorted((c for c in candidates if c.passed), key=key)


def strictly_better(a: float, b: float, primary: str) -> bool:
    """Whether metric value ``a`` beats ``b``."""
    return a > b if HIGHER_IS_BETTER[primary] else a < b


def choose(
    candidates: list[Candidate],
    primary: str,
    compare: Callable[[Candidate], Comparison | None] | None = None,
    min_rows: int = MIN_COMPARISON_ROWS,
) -> Choice:
    """Champion and challenger among the new versions (and the current champion).

    Args:
        candidates: the new versions, gated (``apply_gate``) on the test split.
        primary: the data set's primary metric.
        compare: given the new best, its comparison with the current champion, or None
            when there is no current champion outside ``candidates``.
        min_rows: fewest unseen test rows for the comparison to count.

    Returns:
        The new best is champion unless a current champion that passes the gate on the
        unseen rows is strictly better there (it then stays, the new best challenges it).
        The challenger is the runner-up, or None.
    """
    ranked = rank(candidates, primary)
    if not ranked:
        return Choice(None, None, "no version passed the gate; champion unchanged")
    best, runner_up = ranked[0], (ranked[1] if len(ranked) > 1 else None)
    comparison = compare(best) if compare else None
    if comparison is None:
        return Choice(best, runner_up, f"v{best.version} is the best by cv_{primary}")
    current, rows = comparison.current, comparison.rows
    if rows < min_rows:
        note = (
            f"only {rows} test rows unseen by current champion v{current.version} "
            f"(< {min_rows}): the gate alone decides, v{best.version} promoted"
        )
        return Choice(best, runner_up, note, rows)
    new, old = _value(comparison.best_metrics, primary), _value(current.metrics, primary)
    where = (
        f"on {rows} test rows unseen by current champion v{current.version} "
        f"({primary} {_fmt(new)} vs {_fmt(old)})"
    )
    if current.passed and old is not None and (new is None or strictly_better(old, new, primary)):
        return Choice(current, best, f"v{best.version} is worse {where}: champion kept", rows)
    return Choice(best, runner_up, f"v{best.version} is not worse {where}: promoted", rows)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def row_keys(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One hash per row over ``columns`` (numbers as floats, so 1 and 1.0 are one row)."""
    view = frame[columns].copy()
    for col in columns:
        if pd.api.types.is_numeric_dtype(view[col]):
            view[col] = view[col].astype(float)
        else:
            view[col] = view[col].astype(str)
    return pd.util.hash_pandas_object(view, index=False)


def unseen_rows(test: pd.DataFrame, trained_on: pd.DataFrame, id_columns: list[str]) -> np.ndarray:
    """Boolean mask of the ``test`` rows that are not in ``trained_on``.

    A row is identified by the data set's id columns when both frames keep them, else by
    every column the two frames share (the split artifacts drop identifiers).
    """
    ids = [c for c in id_columns if c in test.columns and c in trained_on.columns]
    columns = ids or sorted(set(test.columns) & set(trained_on.columns))
    seen = set(row_keys(trained_on, columns))
    return ~row_keys(test, columns).isin(seen).to_numpy()


def summary_table(candidates: list[Candidate], choice: Choice, primary: str) -> pd.DataFrame:
    """One row per version, best CV first: the CV primary metric, key test metrics, gate, role."""
    shown = [
        "roc_auc",
        "f1",
        "precision",
        "recall",
        "accuracy",
        "rmse",
        "mae",
        "r2",
        "interval_coverage",
        "ndcg_at_10",
        "rmse_over_noise_floor",
    ]
    roles = {}
    if choice.champion is not None:
        roles[choice.champion.version] = "champion"
    if choice.challenger is not None:
        roles[choice.challenger.version] = "challenger"
    cv_name = f"cv_{primary}"
    rows = []
    for c in candidates:
        row = {"version": c.version, "version_name": c.version_name}
        row[cv_name] = round(c.cv[primary], 4) if primary in c.cv else float("nan")
        row.update({f"test_{k}": round(c.metrics[k], 4) for k in shown if k in c.metrics})
        row.update(gate="passed" if c.passed else "failed", role=roles.get(c.version, ""))
        rows.append(row)
    ascending = not HIGHER_IS_BETTER[primary]
    return pd.DataFrame(rows).sort_values(cv_name, ascending=ascending, na_position="last")
