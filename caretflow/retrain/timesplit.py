"""A held-out split that looks like tomorrow: the newest timed rows are the test."""

from __future__ import annotations

import math

import pandas as pd


def time_split(df: pd.DataFrame, time_column: str,
               test_share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, test)``: the newest ``test_share`` of the rows that carry a time are the test.

    Rows without a time (base data in a retrain snapshot) always train.

    Args:
        df: the rows.
        time_column: epoch seconds per row (NaN: no time).
        test_share: share of the timed rows held out, in (0, 1).

    Raises:
        ValueError: no row carries a time, or the share leaves no test or no training row.
    """
    if not 0 < test_share < 1:
        raise ValueError(f"test share must be in (0, 1), not {test_share}")
    if time_column not in df.columns:
        raise ValueError(f"time split: column {time_column!r} is missing")
    times = pd.to_numeric(df[time_column], errors="coerce").dropna()
    if times.empty:
        raise ValueError(f"time split: no row has a value in {time_column!r}")
    n_test = max(1, math.ceil(test_share * len(times)))
    if n_test >= len(df):
        raise ValueError(f"time split: {len(df)} rows leave nothing to train on")
    test_index = times.sort_values(kind="stable").index[-n_test:]
    return df.drop(index=test_index), df.loc[test_index]
