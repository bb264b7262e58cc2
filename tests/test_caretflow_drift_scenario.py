"""The drifting scenarios: deterministic, real rows, the change exactly where it is said to be."""

from __future__ import annotations

import pandas as pd

from caretflow.data.drift_scenario import (
    CHURN_CSV,
    GERMANY_OLD,
    GERMANY_YOUNG,
    churn_scenario,
    ratings_scenario,
)


def _frame(part) -> pd.DataFrame:
    df = pd.DataFrame(part.records)
    df["truth"], df["after"] = part.truths, part.after_change
    return df


def test_churn_replays_real_rows_and_shifts_only_germany_after_the_change_point():
    a, b = churn_scenario(400, 2000, 300, seed=3), churn_scenario(400, 2000, 300, seed=3)
    assert a == b and a != churn_scenario(400, 2000, 300, seed=4)
    assert (len(a.replay), len(a.fresh), a.change_at) == (2400, 300, 400)
    assert a.replay.after_change[399:401] == [False, True] and all(a.fresh.after_change)
    rows = pd.read_csv(CHURN_CSV).set_index("CustomerId")
    df = pd.concat([_frame(a.replay), _frame(a.fresh)], ignore_index=True)
    assert df["CustomerId"].is_unique and "Exited" not in df and "Surname" not in df
    recorded = rows.loc[df["CustomerId"], "Exited"].to_numpy()
    germany = (df["Geography"] == "Germany").to_numpy()
    unchanged = ~(df["after"].to_numpy() & germany)
    assert (df["truth"].to_numpy()[unchanged] == recorded[unchanged]).all()
    shifted = df[df["after"] & germany]
    rates = shifted.groupby(shifted["Age"] >= 40)["truth"].mean()
    assert abs(rates[True] - GERMANY_OLD) < 0.03 and abs(rates[False] - GERMANY_YOUNG) < 0.05
    post = a.replay.post_change()
    assert len(post) == 2000 and sum(post.in_segment) == int(germany[400:2400].sum())


def test_ratings_taste_shift_lowers_older_users_category_c_after_the_change_point():
    s = ratings_scenario(500, 1000, 200, seed=1)
    df = _frame(s.replay)
    seg = (df["user_age"] >= 52) & (df["item_category"] == "C")
    after, before = df.loc[seg & df["after"], "truth"], df.loc[seg & ~df["after"], "truth"]
    assert after.mean() < before.mean() - 1
    assert set(df["truth"]) <= {1, 2, 3, 4, 5} and "rating" not in df
