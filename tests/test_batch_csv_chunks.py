"""Batch scoring's CSV reader: typed chunks, text fallback, row numbers across chunks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from caretflow.inference import batch

SCHEMA = {"Age": {"type": "int", "min": 18, "max": 100},
          "Balance": {"type": "float", "min": 0},
          "Gender": {"type": "category", "categories": ["Female", "Male"]}}


class _AgeModel:
    """A model double: probability from Age and Balance, so rows can be told apart."""

    def predict_details(self, X: pd.DataFrame) -> dict:
        proba = (X["Age"].to_numpy() + X["Balance"].to_numpy()) / 1000
        return {"prediction": (proba > 0.05).astype(int), "probability": proba}


def _scoring() -> batch.Scoring:
    return batch.Scoring(features=list(SCHEMA), schema=SCHEMA, task="classification",
                         keep=["Id"], model_version="3", version_name="v")


def test_typed_chunks_fall_back_to_text_and_keep_row_numbers(tmp_path):
    ages = [str(20 + i) for i in range(14)]
    ages[4], ages[8], ages[12] = "abc", " 45 ", "1e1"  # unparseable, blanks, below min as written
    frame = pd.DataFrame({"Id": range(100, 114), "Age": ages, "Balance": ["1.5"] * 14,
                          "Gender": ["Male", "Female"] * 7})
    frame.loc[6, "Balance"] = ""
    frame.loc[13, "Gender"] = "X"
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False)
    scoring = _scoring()

    chunks = list(batch.iter_chunks([path], "csv", scoring, chunk_rows=3))
    assert [(start, typed) for _, start, _, typed in chunks] == [
        (0, True), (3, False), (6, True), (9, True), (12, True)]  # only "abc" fails to parse
    assert chunks[0][2]["Age"].dtype == np.float64

    results = list(batch.score_chunks(_AgeModel(), [path], "csv", scoring, chunk_rows=3))
    assert [rows for rows, _, _ in results] == [3, 3, 3, 3, 2]
    scored = pd.concat([s for _, s, _ in results], ignore_index=True)
    errors = pd.concat([e for _, _, e in results], ignore_index=True)
    assert errors.set_index("row")["reason"].to_dict() == {
        4: "Age: not a number (abc)", 6: "Balance: missing", 12: "Age: 1e1 below min 18",
        13: "Gender: unknown category X (expected ['Female', 'Male'])"}
    assert scored["Id"].tolist() == [100, 101, 102, 103, 105, 107, 108, 109, 110, 111]
    assert scored.loc[scored["Id"] == 108, "probability"].item() == (45 + 1.5) / 1000
    assert (scored["model_version"] == "3").all()
