"""A drifting world: replayed traffic whose input-outcome relation changes at a known point.

Every record comes with its true outcome (sent later as ``/feedback``).

Deterministic: the same arguments give the same records, order and labels.

``churn`` (real rows of ``data/Churn_Modelling.csv``, drawn without replacement in a seeded
order): before the change point every row keeps its recorded ``Exited``. From the change point
on, customers in Germany churn by a new propensity that depends on their age alone (a
competitor's offer for the young, a loyalty scheme for the old): aged 40 or more they leave with
probability 0.02 (0.51 in the data), younger with probability 0.90 (0.17 in the data).
Everyone else keeps the recorded label. In the data Germany holds 25 % of the rows, so about a
quarter of post-change traffic follows the new relation, which inverts what the data taught
(older customers churn more). A model retrained on the base data plus a few thousand such
labels (``policy=append``) is outvoted about 3:1 by the base rows of the same segment;
``policy=replace`` (production only) learns the new relation (docs/retraining.md).

``ratings`` (the rows of ``caretflow.data.ratings_generator``, same seeded order): from the
change point on, users aged 52 or more rate category-C items 1.5 lower (rounded, clipped to
1..5), the opposite of the generator's ground truth where older users like C best.

Each scenario has ``replay`` (the traffic: ``n_before`` records then ``n_after``) and
``fresh`` (``n_fresh`` further post-change records never replayed, to compare models on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from caretflow.paths import ROOT

CHURN_CSV = ROOT / "data" / "Churn_Modelling.csv"
CHURN_NOT_INPUTS = ("RowNumber", "Surname", "Exited")
GERMANY_OLD, GERMANY_YOUNG, OLD_AGE = 0.02, 0.90, 40
RATINGS_SHIFT, RATINGS_OLD_AGE, RATINGS_CATEGORY = -1.5, 52, "C"


@dataclass(frozen=True)
class Part:
    """Records (model inputs only), their true outcomes and whether each is past the change."""

    records: list[dict]
    truths: list
    after_change: list[bool]
    in_segment: list[bool]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, sl: slice) -> Part:
        return Part(self.records[sl], self.truths[sl], self.after_change[sl],
                    self.in_segment[sl])

    def batches(self, size: int):
        """``(records, truths)`` slices of at most ``size``, in replay order."""
        for i in range(0, len(self.records), size):
            yield self.records[i:i + size], self.truths[i:i + size]

    def post_change(self) -> Part:
        """The records past the change point only."""
        keep = [i for i, after in enumerate(self.after_change) if after]
        return Part(*([seq[i] for i in keep] for seq in (
            self.records, self.truths, self.after_change, self.in_segment)))


@dataclass(frozen=True)
class Scenario:
    """A replay with a known change point (index ``change_at`` of ``replay``)."""

    name: str
    target: str
    task: str
    change_at: int
    replay: Part
    fresh: Part
    description: str


def _split(inputs: pd.DataFrame, truths: np.ndarray, segment: np.ndarray, n_before: int,
           n_after: int) -> tuple[Part, Part]:
    after = np.arange(len(inputs)) >= n_before
    records = inputs.to_dict("records")
    cut = n_before + n_after

    def part(sl: slice) -> Part:
        return Part(records[sl], truths[sl].tolist(), after[sl].tolist(), segment[sl].tolist())

    return part(slice(0, cut)), part(slice(cut, None))


def _order(n_rows: int, needed: int, seed: int) -> np.ndarray:
    if needed > n_rows:
        raise ValueError(f"the scenario needs {needed} rows, the data has {n_rows}")
    return np.random.default_rng(seed).permutation(n_rows)[:needed]


def churn_records(rows: pd.DataFrame, labelled: bool, age_shift: int = 0) -> list[dict]:
    """``/predict`` records of real churn rows, optionally with ``true_value`` and older customers.

    Args:
        rows: rows of the churn table.
        labelled: add each row's ``Exited`` as ``true_value``.
        age_shift: years added to every ``Age`` (capped at 92), a simple input drift.
    """
    out = rows.drop(columns=list(CHURN_NOT_INPUTS)).to_dict("records")
    for rec, truth in zip(out, rows["Exited"], strict=True):
        rec["Age"] = min(int(rec["Age"]) + age_shift, 92)
        if labelled:
            rec["true_value"] = int(truth)
    return out


def churn_scenario(n_before: int = 1000, n_after: int = 2000, n_fresh: int = 1000,
                   seed: int = 0) -> Scenario:
    """Churn traffic whose churn propensity shifts for customers in Germany (module docstring).

    Args:
        n_before: records replayed before the change point.
        n_after: records replayed after it.
        n_fresh: further post-change records, not replayed.
        seed: row order and the post-change label draws.
    """
    rows = pd.read_csv(CHURN_CSV)
    rows = rows.iloc[_order(len(rows), n_before + n_after + n_fresh, seed)].reset_index(drop=True)
    germany = (rows["Geography"] == "Germany").to_numpy()
    old = (rows["Age"] >= OLD_AGE).to_numpy()
    draws = np.random.default_rng([seed, 1]).random(len(rows))
    shifted = (draws < np.where(old, GERMANY_OLD, GERMANY_YOUNG)).astype(int)
    after = np.arange(len(rows)) >= n_before
    truths = np.where(after & germany, shifted, rows["Exited"].to_numpy()).astype(int)
    inputs = rows.drop(columns=list(CHURN_NOT_INPUTS))
    replay, fresh = _split(inputs, truths, germany, n_before, n_after)
    return Scenario("churn", "Exited", "classification", n_before, replay, fresh,
                    f"customers in Germany: aged {OLD_AGE}+ churn with p={GERMANY_OLD}, "
                    f"younger with p={GERMANY_YOUNG} from record {n_before} on")


def ratings_scenario(n_before: int = 1000, n_after: int = 2000, n_fresh: int = 900,
                     seed: int = 0) -> Scenario:
    """Ratings traffic with a taste shift of older users against category C (module docstring).

    Args:
        n_before: records replayed before the change point.
        n_after: records replayed after it.
        n_fresh: further post-change records, not replayed.
        seed: row order.
    """
    from caretflow.data.ratings_generator import generate_ratings

    rows = generate_ratings()
    rows = rows.iloc[_order(len(rows), n_before + n_after + n_fresh, seed)].reset_index(drop=True)
    segment = ((rows["user_age"] >= RATINGS_OLD_AGE)
               & (rows["item_category"] == RATINGS_CATEGORY)).to_numpy()
    after = np.arange(len(rows)) >= n_before
    shifted = np.clip(np.round(rows["rating"] + RATINGS_SHIFT), 1, 5)
    truths = np.where(after & segment, shifted, rows["rating"]).astype(int)
    inputs = rows.drop(columns=["rating", "expected_rating"])
    replay, fresh = _split(inputs, truths, segment, n_before, n_after)
    return Scenario("ratings", "rating", "regression", n_before, replay, fresh,
                    f"users aged {RATINGS_OLD_AGE}+ rate category {RATINGS_CATEGORY} "
                    f"{RATINGS_SHIFT:+} from record {n_before} on")


SCENARIOS = {"churn": churn_scenario, "ratings": ratings_scenario}
