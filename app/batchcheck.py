"""Column-wise validation of a ``{"records": [...]}`` batch, before the pydantic models.

Validating a large batch record by record with pydantic costs more than scoring it. The
checker here validates whole columns at once against the same input schema and accepts a
batch only when every value is one pydantic certainly accepts unchanged (or only widened
from int to float). On anything else (a bad or unusual value, a missing field, a non-dict
record) it answers None and the caller validates with pydantic, so the 422 details of a bad
batch are exactly pydantic's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

_NUMBER = {int, float}
_INT64 = (-(2**63), 2**63 - 1)
SCALAR_MAX_ROWS = 32  # up to this many values a column is checked in Python, not numpy


@dataclass(frozen=True)
class Batch:
    """Validated records as columns: what ``app.scoring`` scores and logs.

    Attributes:
        columns: feature (and routing key) name -> one value per record, as pydantic
            stores them.
        true_values: inline ``true_value`` per record (None where absent).
        version_name: the requested version, or None.
        enable_ab_testing: route between champion and challenger.
        arrays: numpy arrays of some columns, made while validating them (``array``).
    """

    columns: dict[str, list]
    true_values: list
    version_name: str | None
    enable_ab_testing: bool
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Number of records."""
        return len(self.true_values)

    def array(self, name: str) -> np.ndarray:
        """Column ``name`` as ``np.asarray`` makes it (the array validation made, if any)."""
        made = self.arrays.get(name)
        return np.asarray(self.columns[name]) if made is None else made

    @classmethod
    def from_records(cls, records: list, names: list[str], version_name: str | None,
                     enable_ab_testing: bool) -> Batch:
        """The batch of pydantic-validated records (``names``: the columns to keep)."""
        columns = {name: [getattr(r, name, None) for r in records] for name in names}
        return cls(columns, [r.true_value for r in records], version_name, enable_ab_testing)


@dataclass(frozen=True)
class Columns:
    """Records sent as columns (``dataframe_split``, named-column ``inputs`` / ``instances``).

    Checked as columns; made into records only when pydantic must explain a bad batch.
    """

    names: list[str]
    values: list[list]  # one list per name, each one value per record
    size: int

    @classmethod
    def of(cls, columns: dict[str, list]) -> Columns:
        """Columns of a name -> values mapping whose lists have one length."""
        values = list(columns.values())
        return cls(list(columns), values, len(values[0]) if values else 0)

    def __len__(self) -> int:
        return self.size

    def as_dict(self) -> dict[str, list]:
        """Name -> values (a repeated name: its last column, as a record would keep it)."""
        return dict(zip(self.names, self.values, strict=True))

    def records(self) -> list[dict]:
        """One dict per record."""
        if not self.names:
            return [{} for _ in range(self.size)]
        return [dict(zip(self.names, row, strict=True))
                for row in zip(*self.values, strict=True)]


def _numeric(values: list, spec: dict) -> tuple[list, np.ndarray | None] | None:
    """The column as pydantic would store it and its array, or None when pydantic must decide.

    Every value a finite float, or an int within int64, within the spec's bounds. A short
    column is checked in Python (no array to make: None in its place), a longer one as a
    numpy array (the one ``np.asarray`` makes of the stored column); both compare only the
    column's lowest and highest values with the bounds.
    """
    types = set(map(type, values))
    integer = spec["type"] == "int"
    if integer and types != {int} or not types <= _NUMBER:
        return None
    if not values:  # an empty float column (an empty int one has no int type)
        return values, None
    same = integer or types == {float}  # else ints in a float column: stored as floats
    try:  # OverflowError: an int beyond int64, or one no float can hold (CSV can carry one)
        if len(values) <= SCALAR_MAX_ROWS:
            numbers, arr = values if same else [float(v) for v in values], None
            if not integer and not all(map(math.isfinite, numbers)):
                return None
            lowest, highest = min(numbers), max(numbers)
        else:
            arr = np.array(values, dtype=np.int64 if integer else np.float64)
            if not integer and not np.isfinite(arr).all():
                return None
            numbers, lowest, highest = values if same else arr.tolist(), arr.min(), arr.max()
    except OverflowError:
        return None
    low, high = spec.get("min"), spec.get("max")
    if integer and not _INT64[0] <= lowest <= highest <= _INT64[1]:
        return None
    if low is not None and lowest < low or high is not None and highest > high:
        return None
    return numbers, arr


def _identifier(values: list) -> bool:
    """An id column or routing key: int, text of at most 200 characters, or null."""
    types = set(map(type, values))
    if not types <= {int, str, type(None)}:
        return False
    return str not in types or all(len(v) <= 200 for v in values if type(v) is str)


def _truth(values: list, task: str, target_range=None) -> list | None:
    """Inline ``true_value``: 0/1 for classification, a finite number (in range) otherwise."""
    types = set(map(type, values))
    if task == "classification":
        return values if types <= {int, type(None)} and set(values) <= {0, 1, None} else None
    if not types <= {int, float, type(None)}:
        return None
    present = np.array([float(v) for v in values if v is not None], dtype=np.float64)
    if present.size and not np.isfinite(present).all():
        return None
    if present.size and target_range and not (
            (present >= target_range[0]) & (present <= target_range[1])).all():
        return None
    return [None if v is None else float(v) for v in values]


class BatchChecker:
    """The column-wise validator of one contract's batch requests.

    Args:
        contract: the serving model's contract (as for ``app.schemas.build_models``).
    """

    def __init__(self, contract: dict):
        schema = {c: contract["schema"][c] for c in contract["features"]}
        self.schema, self.task = schema, contract["task"]
        self.target_range = contract.get("target_range")
        self.categories = {c: {str(v) for v in s["categories"]}
                           for c, s in schema.items() if s["type"] == "category"}
        ids = [c for c in contract.get("id_columns") or [] if c not in schema]
        routing = contract.get("routing_key")
        if routing and routing not in schema and routing not in ids:
            ids.append(routing)
        self.optional = ids
        self.keep = [*schema, *([routing] if routing and routing not in schema else [])]

    def check(self, body: dict) -> Batch | None:
        """The validated batch, or None when pydantic must validate (and explain) it.

        Args:
            body: the parsed JSON object with ``records``.

        Returns:
            The batch, or None.
        """
        records = body.get("records")
        if (type(records) is not list or not records
                or not all(type(r) is dict for r in records)):
            return None
        try:
            columns = {name: [r[name] for r in records] for name in self.schema}
        except KeyError:
            return None
        for name in (*self.optional, "true_value"):
            columns[name] = [r.get(name) for r in records]
        return self.check_columns(columns, body.get("version_name"),
                                  body.get("enable_ab_testing", False))

    def check_columns(self, columns: dict[str, list], version=None, ab=False) -> Batch | None:
        """``check`` of a batch given as columns (one list per field, one value per record).

        A feature column that is absent leaves the batch to pydantic; an absent id column or
        ``true_value`` is null for every record, as an absent key of a record is.

        Args:
            columns: field name -> values (extra fields are ignored).
            version: the requested ``version_name``, or None.
            ab: ``enable_ab_testing`` as sent.

        Returns:
            The batch, or None.
        """
        if type(ab) is not bool or not (version is None or (
                type(version) is str and 1 <= len(version) <= 100)):
            return None
        out, arrays = {}, {}
        for name, spec in self.schema.items():
            values = columns.get(name)
            if type(values) is not list or not values:
                return None
            if spec["type"] == "category":
                ok = set(map(type, values)) == {str} and set(values) <= self.categories[name]
            else:
                checked = _numeric(values, spec)
                ok = checked is not None
                if ok:
                    values, arrays[name] = checked
            if not ok:
                return None
            out[name] = values
        n = len(out[next(iter(self.schema))])
        if any(len(values) != n for values in out.values()):
            return None
        for name in self.optional:
            values = columns.get(name, [None] * n)
            if type(values) is not list or len(values) != n or not _identifier(values):
                return None
            out[name] = values
        truths = columns.get("true_value", [None] * n)
        if type(truths) is not list or len(truths) != n:
            return None
        truths = _truth(truths, self.task, self.target_range)
        if truths is None:
            return None
        return Batch({name: out[name] for name in self.keep}, truths, version, ab,
                     {name: a for name, a in arrays.items() if a is not None})
