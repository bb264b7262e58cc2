"""``validate`` on a frame of mixed good and bad rows equals its recorded behaviour.

``tests/data/validation_golden.json`` holds the accepted rows and the per-row reasons the
row-wise-era implementation gave for the frame ``mixed_frame`` builds (recorded before the
per-chunk vectorisation); any change of accepted rows, typed values or reasons fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from caretflow.inference.validation import validate

GOLDEN = Path(__file__).parent / "data" / "validation_golden.json"
SCHEMA = {"Age": {"type": "int", "min": 18, "max": 100},
          "Score": {"type": "float", "min": 0.5, "max": 900},
          "Balance": {"type": "float"},
          "Tenure": {"type": "int", "min": 0},
          "Gender": {"type": "category", "categories": ["Female", "Male"]},
          "Code": {"type": "category", "categories": [1, 2, 3]}}
TEXT_VALUES = ["30", " 41 ", "41.5", "abc", "", "  ", "150", "17", "1e1", "inf", "-inf", "nan",
               "NaN", "1_000", "+20", "0x10", "18", "100", "100.0", "7", None, "-0"]
NUMBERS = [0.0, 0.5, 0.4, 1.0, 899.9, 900.0, 900.1, -1.0, np.nan, np.inf, -np.inf, 12.25]


def mixed_frame(rows: int = 3000, seed: int = 7) -> pd.DataFrame:
    """Mostly good rows with every kind of bad value, in text, numeric and object columns."""
    rng = np.random.default_rng(seed)

    def pick(values, good, p_bad):
        out = np.array(good, dtype=object)
        bad = rng.random(rows) < p_bad
        out[bad] = np.array(values, dtype=object)[rng.integers(0, len(values), bad.sum())]
        return out

    frame = pd.DataFrame({
        "Age": pick(TEXT_VALUES, rng.integers(18, 101, rows).astype(str), 0.15),
        "Score": pick(NUMBERS, rng.uniform(1, 899, rows).round(2), 0.1).astype("float64"),
        "Balance": pick(["1.5", "x", None, "2", True], rng.uniform(0, 9, rows).round(3), 0.05),
        "Tenure": pick([-1, 2.5, None, 11], rng.integers(0, 11, rows), 0.05),
        "Gender": pick(["Robot", "male", None, " Male", ""],
                       rng.choice(["Female", "Male"], rows), 0.05),
        "Code": pick([4, "1", 1.0, None, "x"], rng.integers(1, 4, rows), 0.05)},
        index=pd.RangeIndex(10_000, 10_000 + rows))
    frame["Unused"] = "ignored"
    frame.loc[10_000 + rows - 1] = [None] * len(SCHEMA) + ["ignored"]  # every feature missing
    return frame


def outcome(frame: pd.DataFrame) -> dict:
    """Accepted rows (index, dtypes, values as JSON) and reasons of ``validate``."""
    valid, reasons = validate(frame, list(SCHEMA), SCHEMA)
    values = {name: [v if isinstance(v, str) else float(v) for v in valid[name]]
              for name in SCHEMA}
    return {"index": [int(i) for i in valid.index],
            "dtypes": {name: str(t) for name, t in valid.dtypes.items()},
            "values": values,
            "reasons": {str(i): r for i, r in reasons.items()},
            "reasons_dtype": str(reasons.dtype)}


def test_validate_equals_recorded_behaviour_on_mixed_rows():
    frame = mixed_frame()
    got, expected = outcome(frame), json.loads(GOLDEN.read_text())
    assert 300 < len(expected["reasons"]) < 1500  # the frame really mixes good and bad rows
    assert got["index"] == expected["index"]
    assert got["reasons"] == expected["reasons"]
    assert got == expected


def test_validate_does_not_depend_on_chunking():
    frame = mixed_frame()
    whole = outcome(frame)
    parts = [outcome(frame.iloc[i:i + 700]) for i in range(0, len(frame), 700)]
    assert [i for p in parts for i in p["index"]] == whole["index"]
    assert {k: v for p in parts for k, v in p["reasons"].items()} == whole["reasons"]


def test_validate_booleans_and_text_in_an_otherwise_clean_object_column():
    schema = {"Balance": {"type": "float"}}
    for values, reasons in (([1.5, True], {1: "Balance: not a number (True)"}),
                            (["1.5", " 2 ", None], {2: "Balance: missing"}),
                            (["1.5", "True"], {1: "Balance: not a number (True)"})):
        frame = pd.DataFrame({"Balance": pd.Series(values, dtype=object)})
        valid, got = validate(frame, ["Balance"], schema)
        assert got.to_dict() == reasons
        assert list(valid.index) == [i for i in frame.index if i not in reasons]


if __name__ == "__main__":  # records the golden file (run once, before changing validate)
    GOLDEN.write_text(json.dumps(outcome(mixed_frame()), indent=0, sort_keys=True))
