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
    """The column as float64; text that is not a number (and booleans) become NaN.

    Text is parsed as it is first (one vectorised pass); only the values that fail are
    parsed again with surrounding blanks stripped, so clean files pay for one pass.
    """
    if pd.api.types.is_bool_dtype(col):
        return pd.Series(np.nan, index=col.index)
    if pd.api.types.is_numeric_dtype(col):
        return col.astype("float64")
    if pd.api.types.infer_dtype(col, skipna=True) == "string":  # text only (CSV's case)
        try:
            return pd.Series(pd.to_numeric(col.to_numpy(dtype=object), errors="raise"),
                             index=col.index).astype("float64")
        except (ValueError, TypeError):
            pass
    as_text = col.astype("string").str.strip()
    return pd.to_numeric(as_text, errors="coerce").astype("float64")


def _mark(reasons: np.ndarray, rows: np.ndarray, make) -> None:
    """Set ``reasons`` (an object array) of the ``rows`` (a mask) to ``make(rows)``, if any."""
    if rows.any():
        reasons[rows] = make(rows)


def _number_problems(name: str, col: pd.Series, spec: dict, present: np.ndarray):
    """(values as float64, reason per row or None) of one ``int`` / ``float`` column."""
    values = _as_numbers(col)
    reasons = np.full(len(col), None, dtype=object)

    def text(rows):  # the offending values as written, only for the rows that need them
        return col[rows].astype("string").to_numpy(dtype=object)

    number = values.to_numpy()
    nan = np.isnan(number)
    _mark(reasons, nan & present, lambda r: name + ": not a number (" + text(r) + ")")
    infinite = np.isinf(number)
    _mark(reasons, infinite, lambda r: f"{name}: not a finite number")
    ok = ~nan & ~infinite
    if spec["type"] == "int":
        fraction = ok & (number != np.floor(np.where(ok, number, 0)))
        _mark(reasons, fraction, lambda r: name + ": not an integer (" + text(r) + ")")
        ok &= ~fraction
    for bound, op, word in (("min", np.less, "below min"), ("max", np.greater, "above max")):
        limit = spec.get(bound)
        if limit is None:
            continue
        out = ok & op(np.where(ok, number, limit), limit)
        _mark(reasons, out, lambda r, w=word, lim=limit: f"{name}: " + text(r) + f" {w} {lim}")
    return values, reasons


def _category_problems(name: str, col: pd.Series, spec: dict, present: np.ndarray):
    """(values as text, reason per row or None) of one ``category`` column."""
    allowed = [str(c) for c in spec["categories"]]
    text = col.astype("string")
    reasons = np.full(len(col), None, dtype=object)
    unknown = present & ~text.isin(allowed).to_numpy()
    _mark(reasons, unknown, lambda r: (name + ": unknown category " + text[r]
                                       + f" (expected {allowed})").to_numpy(dtype=object))
    return text, reasons


def validate(frame: pd.DataFrame, features: list[str], schema: dict):
    """Check every row of ``frame`` against ``schema``.

    Each column is checked as a whole (numpy masks; the reason text is built only for the
    rows that fail), and a row keeps the reason of its first failing feature.

    Args:
        frame: the rows (must hold every column in ``features``; extra columns are ignored).
        features: the model's input columns, in order (the contract's ``features``).
        schema: column -> ``{type, min, max, categories}`` (the contract's ``schema``).

    Returns:
        ``(valid, reasons)``: the accepted rows' features, typed as in training, with
        ``frame``'s index; and the rejected rows' reason (a string Series indexed like
        ``frame``, holding only the rejected rows).
    """
    reason = np.full(len(frame), None, dtype=object)
    typed = {}
    for name in features:
        spec = schema[name]
        col = frame[name]
        present = col.notna().to_numpy()
        if spec["type"] in ("int", "float"):
            values, problems = _number_problems(name, col, spec, present)
        elif spec["type"] == "category":
            values, problems = _category_problems(name, col, spec, present)
        else:
            raise ContractError(f"schema of {name!r}: unknown type {spec['type']!r}")
        _mark(problems, ~present, lambda r, n=name: f"{n}: missing")
        first = (reason == None) & (problems != None)  # noqa: E711 - elementwise on objects
        if first.any():
            reason[first] = problems[first]
        typed[name] = values
    ok = reason == None  # noqa: E711
    kinds = {"int": "int64", "float": "float64", "category": object}
    valid = pd.DataFrame({name: typed[name].to_numpy()[ok].astype(kinds[schema[name]["type"]])
                          for name in features}, index=frame.index[ok])
    return valid, pd.Series(reason[~ok], index=frame.index[~ok], dtype="string")
