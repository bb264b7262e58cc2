"""The retrain snapshot: production records validated by the model's schema, merged by policy.

Pure functions on frames (plus ``write``): production rows pass the model's own input schema
(``caretflow.inference.validation``) and a target check; rejected rows are counted by reason,
never used. A base row with the same inputs as a production record is replaced by it (the
newer outcome of the same input; and a held-out production record never has its inputs in
the training rows). The policies:

- ``append``: every base row plus every production row;
- ``window``: production rows plus base rows kept by age (a share ``0.5 ** (age / half_life)``,
  drawn with a fixed seed; none past ``max_age_hours``): the base table has no time per row,
  its age is that of the champion it trained;
- ``replace``: production rows only, refused below ``min_rows``.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from caretflow.inference.validation import validate
from caretflow.modelling.selection import row_keys
from caretflow.retrain.feedback import TIME_COLUMN

ORIGIN_COLUMN = "origin"  # base | production
DIGEST_CHARS = 32  # of the sha256 (an MLflow dataset digest holds at most 36)
POLICIES = ("append", "window", "replace")
_KINDS = ("missing", "not a number", "not a finite number", "not an integer", "below min",
          "above max", "unknown category")


class SnapshotError(ValueError):
    """The snapshot cannot be built (empty window, too few rows, unknown policy ...)."""


@dataclass
class Snapshot:
    """A built snapshot.

    Attributes:
        frame: features, target, ``origin`` and ``event_time`` (NaN for base rows).
        counts: rows by origin (``base``, ``production``), plus ``base_replaced`` (same
            inputs as a production record), ``base_dropped`` (window policy), ``labelled``
            (records read) and ``rejected``.
        failures: rejected production records by reason (``"Age: above max"``).
        path: the Parquet file once written.
        digest: the first 32 hex digits of that file's sha256.
    """

    frame: pd.DataFrame
    counts: dict[str, int]
    failures: dict[str, int] = field(default_factory=dict)
    path: Path | None = None
    digest: str | None = None


def reason_kind(reason: str) -> str:
    """A rejection reason without its value (``"Age: 130 above max 100"``: ``"Age: above max"``)."""
    column, _, rest = reason.partition(":")
    kind = next((k for k in _KINDS if k in rest), rest.strip())
    return f"{column}: {kind}"


def _target_reasons(values: pd.Series, task: str, target_range) -> pd.Series:
    """Reason per row for an unusable true value (NA: fine)."""
    y = pd.to_numeric(values, errors="coerce")
    reasons = pd.Series(pd.NA, index=values.index, dtype="string")
    reasons[y.isna() | ~np.isfinite(y.fillna(0))] = "target: not a number"
    if task == "classification":
        reasons[reasons.isna() & ~y.isin([0, 1])] = "target: not 0/1"
    elif target_range:
        low, high = target_range
        reasons[reasons.isna() & ((y < low) | (y > high))] = "target: out of range"
    return reasons


def production_rows(records: pd.DataFrame, contract: dict) -> tuple[pd.DataFrame, dict[str, int]]:
    """Validate labelled records (``feedback.labelled_records``) against the model's contract.

    Args:
        records: the logged inputs with ``true_value`` and ``event_time``.
        contract: the champion's contract (``features``, ``schema``, ``target``, ``task``).

    Returns:
        ``(rows, failures)``: the accepted records as features, target and ``event_time``
        (typed as in training); rejected records counted by ``reason_kind``.
    """
    features, target = list(contract["features"]), contract["target"]
    if records.empty:
        return pd.DataFrame(columns=[*features, target, TIME_COLUMN]), {}
    frame = records.reindex(columns=[*features, "true_value", TIME_COLUMN])
    valid, reasons = validate(frame, features, contract["schema"])
    target_bad = _target_reasons(frame["true_value"], contract["task"],
                                 contract.get("target_range"))
    reasons = reasons.reindex(frame.index).fillna(target_bad).dropna()
    failures = reasons.map(reason_kind).value_counts().to_dict()
    keep = valid.index.difference(reasons.index)
    rows = valid.loc[keep].copy()
    y = pd.to_numeric(frame.loc[keep, "true_value"])
    rows[target] = y.astype("int64") if contract["task"] == "classification" else y
    rows[TIME_COLUMN] = frame.loc[keep, TIME_COLUMN].astype("float64")
    return rows.reset_index(drop=True), {str(k): int(v) for k, v in failures.items()}


def window_share(base_age_hours: float, half_life_hours: float | None,
                 max_age_hours: float | None) -> float:
    """Share of base rows the ``window`` policy keeps at that age."""
    if max_age_hours is not None and base_age_hours > max_age_hours:
        return 0.0
    if not half_life_hours:
        return 1.0
    return float(0.5 ** (max(base_age_hours, 0.0) / half_life_hours))


def merge(base: pd.DataFrame, production: pd.DataFrame, contract: dict, policy: str, *,
          min_rows: int = 0, base_age_hours: float = 0.0, half_life_hours: float | None = None,
          max_age_hours: float | None = None, seed: int = 42) -> Snapshot:
    """The snapshot of ``policy``.

    Args:
        base: the base data (features and target; other columns are dropped).
        production: accepted production rows (``production_rows``).
        contract: the model's contract.
        policy: ``append``, ``window`` or ``replace``.
        min_rows: fewest production rows ``replace`` accepts.
        base_age_hours: age of the base data (``window``).
        half_life_hours: ``window``: the base share halves every so many hours (None: 1).
        max_age_hours: ``window``: base data older than this is dropped (None: never).
        seed: draw of the kept base rows.

    Raises:
        SnapshotError: unknown policy, no production row, or ``replace`` below ``min_rows``.
    """
    if policy not in POLICIES:
        raise SnapshotError(f"unknown policy {policy!r}: expected one of {POLICIES}")
    if production.empty:
        raise SnapshotError("no valid labelled production record: nothing to retrain on")
    features, target = list(contract["features"]), contract["target"]
    missing = [c for c in [*features, target] if c not in base.columns]
    if missing and policy != "replace":
        raise SnapshotError(f"base data lacks columns {missing}")
    prod = production[[*features, target, TIME_COLUMN]].assign(**{ORIGIN_COLUMN: "production"})
    counts = {"production": len(prod), "base": 0, "base_replaced": 0, "base_dropped": 0}
    if policy == "replace":
        if len(prod) < min_rows:
            raise SnapshotError(f"policy replace needs at least {min_rows} valid production "
                                f"rows, the window holds {len(prod)}")
        return Snapshot(prod.reset_index(drop=True), counts)
    kept = base[[*features, target]]
    replaced = row_keys(kept, features).isin(set(row_keys(prod, features))).to_numpy()
    kept, counts["base_replaced"] = kept[~replaced], int(replaced.sum())
    if policy == "window":
        share = window_share(base_age_hours, half_life_hours, max_age_hours)
        n = math.floor(share * len(kept))
        kept = kept.sample(n=n, random_state=seed).sort_index() if n < len(kept) else kept
        counts["base_dropped"] = len(base) - counts["base_replaced"] - len(kept)
    counts["base"] = len(kept)
    kept = kept.assign(**{TIME_COLUMN: np.nan, ORIGIN_COLUMN: "base"})
    frame = pd.concat([kept, prod], ignore_index=True)
    frame[target] = frame[target].astype(prod[target].dtype)
    return Snapshot(frame, counts)


def write(snap: Snapshot, folder: Path, name: str) -> Snapshot:
    """Write the snapshot as ``<folder>/<name>-<digest>.parquet``; set ``path`` and ``digest``."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}-writing.parquet"
    snap.frame.to_parquet(tmp, index=False)
    snap.digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:DIGEST_CHARS]
    snap.path = folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}-{snap.digest[:12]}.parquet"
    tmp.replace(snap.path)
    return snap


def build(records: pd.DataFrame, base: pd.DataFrame, contract: dict, policy: str,
          where: str, **options) -> Snapshot:
    """Validate ``records`` and merge them with ``base`` by ``policy`` (``merge``'s options).

    Args:
        records: labelled records read from the prediction log (``labelled_records``).
        base: the base data.
        contract: the model's contract.
        policy: ``append``, ``window`` or ``replace``.
        where: the window read, for messages (``"churn, last 720 h of sqlite:///..."``).
        **options: ``merge``'s keyword options (``min_rows``, ``base_age_hours`` ...).

    Raises:
        SnapshotError: the window holds no labelled record, or none passes the schema.
    """
    if records.empty:
        raise SnapshotError(f"empty window: no labelled production record ({where}); "
                            "send feedback for served predictions or widen window_hours")
    production, failures = production_rows(records, contract)
    if production.empty:
        raise SnapshotError(f"all {len(records)} labelled records ({where}) fail the model's "
                            f"input schema: {failures}")
    snap = merge(base, production, contract, policy, **options)
    snap.failures = failures
    snap.counts.update(labelled=len(records), rejected=sum(failures.values()))
    return snap
