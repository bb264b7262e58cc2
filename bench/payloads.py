"""Request bodies for the serving benchmark: real rows of a data set, its input columns only."""

from __future__ import annotations

from functools import lru_cache

import orjson
import pandas as pd

from caretflow.config import compose, to_container


def schema(dataset: str = "churn") -> dict:
    """The input schema (column -> type, range, categories) of ``dataset`` from ``conf/``."""
    return to_container(compose([f"dataset={dataset}"]), "dataset")["schema"]


@lru_cache(maxsize=4)
def _table(dataset: str) -> pd.DataFrame:
    from caretflow.data.tables import load_raw

    spec = schema(dataset)
    table = load_raw(compose([f"dataset={dataset}"]).dataset)[list(spec)]
    for col, s in spec.items():
        if s["type"] == "float":
            table[col] = table[col].astype(float)
    return table


def records(n: int, seed: int = 0, dataset: str = "churn") -> list[dict]:
    """``n`` real rows (sampled with replacement beyond the table) as JSON-ready dicts."""
    table = _table(dataset)
    rows = table.sample(n=n, replace=n > len(table), random_state=seed)
    return rows.to_dict(orient="records")


def frame(n: int, seed: int = 0, dataset: str = "churn") -> pd.DataFrame:
    """The same rows as a DataFrame (what the logged pipeline takes in-process)."""
    return pd.DataFrame.from_records(records(n, seed, dataset))


def caretflow_body(rows: list[dict]) -> bytes:
    """``/predict`` body: a flat record for one row, ``{"records": [...]}`` otherwise."""
    return orjson.dumps(rows[0] if len(rows) == 1 else {"records": rows})


def dataframe_split(rows: list[dict]) -> bytes:
    """``/invocations`` body in the ``dataframe_split`` format (both servers take it)."""
    columns = list(rows[0])
    return orjson.dumps({"dataframe_split": {
        "columns": columns, "data": [[r[c] for c in columns] for r in rows]}})
