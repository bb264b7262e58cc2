"""Row-wise validation of a whole frame against a model's input schema, column by column.

Batch scoring reads files whose values can be anything: text in a number column, a
fraction in an integer column, a value out of range, a category the model never saw, a
blank. ``validate`` checks every row without a Python loop over rows and answers, for
each rejected row, the first reason in feature order (``"Age: 130 above max 100"``), and
for the accepted rows the features with the types the model was trained on (``int`` as
int64, ``float`` as float64, ``category`` as text).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from caretflow.inference.contract import ContractError


def _as_numbers(col: pd.Series) -> pd.Series:
    """The column as float64; text that is not a number (and booleans) become NaN."""
    if pd.api.types.is_bool_dtype(col):
        return pd.Series(np.nan, index=col.index)
    if pd.api.types.is_numeric_dtype(col):
        return col.astype("float64")
    as_text = col.astype("string").str.strip()
    return pd.to_numeric(as_text, errors="coerce").astype("float64")


def _number_problems(name: str, col: pd.Series, spec: dict) -> tuple[pd.Series, pd.Series]:
    """(values as float64, reason per row or NA) of one ``int`` / ``float`` column."""
    values = _as_numbers(col)
    reasons = pd.Series(pd.NA, index=col.index, dtype="string")
    text = col.astype("string")
    bad_type = values.isna() & col.notna()
    reasons[bad_type] = name + ": not a number (" + text[bad_type] + ")"
    infinite = np.isinf(values)
    reasons[infinite & reasons.isna()] = f"{name}: not a finite number"
    ok = values.notna() & ~infinite
    if spec["type"] == "int":
        fraction = ok & (values != np.floor(values.where(ok, 0)))
        reasons[fraction] = name + ": not an integer (" + text[fraction] + ")"
        ok &= ~fraction
    for bound, op, word in (("min", np.less, "below min"), ("max", np.greater, "above max")):
        limit = spec.get(bound)
        if limit is None:
            continue
        out = ok & op(values.where(ok, limit), limit)
        reasons[out] = f"{name}: " + text[out] + f" {word} {limit}"
    return values, reasons


def _category_problems(name: str, col: pd.Series, spec: dict) -> tuple[pd.Series, pd.Series]:
    """(values as text, reason per row or NA) of one ``category`` column."""
    allowed = [str(c) for c in spec["categories"]]
    text = col.astype("string")
    reasons = pd.Series(pd.NA, index=col.index, dtype="string")
    unknown = col.notna() & ~text.isin(allowed)
    reasons[unknown] = name + ": unknown category " + text[unknown] + f" (expected {allowed})"
    return text, reasons


def validate(frame: pd.DataFrame, features: list[str], schema: dict):
    """Check every row of ``frame`` against ``schema``.

    Args:
        frame: the rows (must hold every column in ``features``; extra columns are ignored).
        features: the model's input columns, in order (the contract's ``features``).
        schema: column -> ``{type, min, max, categories}`` (the contract's ``schema``).

    Returns:
        ``(valid, reasons)``: the accepted rows' features, typed as in training, with
        ``frame``'s index; and the rejected rows' reason (a string Series indexed like
        ``frame``, holding only the rejected rows).
    """
    reason = pd.Series(pd.NA, index=frame.index, dtype="string")
    typed = {}
    for name in features:
        spec = schema[name]
        col = frame[name]
        if spec["type"] in ("int", "float"):
            values, problems = _number_problems(name, col, spec)
        elif spec["type"] == "category":
            values, problems = _category_problems(name, col, spec)
        else:
            raise ContractError(f"schema of {name!r}: unknown type {spec['type']!r}")
        problems[col.isna()] = f"{name}: missing"
        reason = reason.fillna(problems)
        typed[name] = values
    ok = reason.isna().to_numpy()
    valid = pd.DataFrame({name: typed[name][ok] for name in features}, index=frame.index[ok])
    for name in features:
        kind = schema[name]["type"]
        if kind == "int":
            valid[name] = valid[name].astype("int64")
        elif kind == "category":
            valid[name] = valid[name].astype(object)
    return valid, reason[~ok]
