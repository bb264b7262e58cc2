"""Request bodies for the serving benchmark: real churn rows, the model's input columns only."""

from __future__ import annotations

import orjson
import pandas as pd

from caretflow.config import ROOT, compose, to_container

CHURN_CSV = ROOT / "data" / "Churn_Modelling.csv"


def schema() -> dict:
    """The churn input schema (column -> type, range, categories) from ``conf/dataset``."""
    return to_container(compose(["dataset=churn"]), "dataset")["schema"]


def records(n: int, seed: int = 0) -> list[dict]:
    """``n`` real churn rows (sampled with replacement beyond the table) as JSON-ready dicts."""
    spec = schema()
    frame = pd.read_csv(CHURN_CSV, usecols=list(spec))
    rows = frame.sample(n=n, replace=n > len(frame), random_state=seed)
    for col, s in spec.items():
        if s["type"] == "float":
            rows[col] = rows[col].astype(float)
    return rows[list(spec)].to_dict(orient="records")


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    """The same rows as a DataFrame (what the logged pipeline takes in-process)."""
    return pd.DataFrame.from_records(records(n, seed))


def caretflow_body(rows: list[dict]) -> bytes:
    """``/predict`` body: a flat record for one row, ``{"records": [...]}`` otherwise."""
    return orjson.dumps(rows[0] if len(rows) == 1 else {"records": rows})


def mlflow_body(rows: list[dict]) -> bytes:
    """``/invocations`` body of ``mlflow models serve``."""
    return orjson.dumps({"dataframe_records": rows})
