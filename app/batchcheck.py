"""Column-wise validation of a ``{"records": [...]}`` batch, before the pydantic models.

Validating a large batch record by record with pydantic costs more than scoring it. The
checker here validates whole columns at once against the same input schema and accepts a
batch only when every value is one pydantic certainly accepts unchanged (or only widened
from int to float). On anything else (a bad or unusual value, a missing field, a non-dict
record) it answers None and the caller validates with pydantic, so the 422 details of a bad
batch are exactly pydantic's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_NUMBER = {int, float}


@dataclass(frozen=True)
class Batch:
    """Validated records as columns: what ``app.scoring`` scores and logs.

    Attributes:
        columns: feature (and routing key) name -> one value per record, as pydantic
            stores them.
        true_values: inline ``true_value`` per record (None where absent).
        version_name: the requested version, or None.
        enable_ab_testing: route between champion and challenger.
    """

    columns: dict[str, list]
    true_values: list
    version_name: str | None
    enable_ab_testing: bool

    @property
    def size(self) -> int:
        """Number of records."""
        return len(self.true_values)

    @classmethod
    def from_records(cls, records: list, names: list[str], version_name: str | None,
                     enable_ab_testing: bool) -> Batch:
        """The batch of pydantic-validated records (``names``: the columns to keep)."""
        columns = {name: [getattr(r, name, None) for r in records] for name in names}
        return cls(columns, [r.true_value for r in records], version_name, enable_ab_testing)


def _numeric(values: list, spec: dict) -> list | None:
    """The column as pydantic would store it, or None when pydantic must decide."""
    types = set(map(type, values))
    if spec["type"] == "int":
        if types != {int}:
            return None
        try:
            arr = np.array(values, dtype=np.int64)
        except OverflowError:
            return None
    else:
        if not types <= _NUMBER:
            return None
        arr = np.array(values, dtype=np.float64)
        if not np.isfinite(arr).all():
            return None
    if spec.get("min") is not None and not (arr >= spec["min"]).all():
        return None
    if spec.get("max") is not None and not (arr <= spec["max"]).all():
        return None
    return values if spec["type"] == "int" or types == {float} else arr.tolist()


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
        version, ab = body.get("version_name"), body.get("enable_ab_testing", False)
        records = body.get("records")
        if (type(ab) is not bool or not (version is None or (
                type(version) is str and 1 <= len(version) <= 100))
                or type(records) is not list or not records
                or not all(type(r) is dict for r in records)):
            return None
        columns = {}
        for name, spec in self.schema.items():
            try:
                values = [r[name] for r in records]
            except KeyError:
                return None
            if spec["type"] == "category":
                ok = set(map(type, values)) == {str} and set(values) <= self.categories[name]
            else:
                values = _numeric(values, spec)
                ok = values is not None
            if not ok:
                return None
            columns[name] = values
        for name in self.optional:
            values = [r.get(name) for r in records]
            if not _identifier(values):
                return None
            columns[name] = values
        truths = _truth([r.get("true_value") for r in records], self.task, self.target_range)
        if truths is None:
            return None
        return Batch({name: columns[name] for name in self.keep}, truths, version, ab)
