"""Deterministic synthetic ratings with a documented ground truth.

A rating is ``round(clip(mu + b_user + b_item + affinity + price + noise, 1, 5))`` where

- ``b_user ~ N(0, user_sd)``: per-user leniency, not explained by age or gender;
- ``b_item ~ N(0, item_sd)``: per-item quality, not explained by category or price;
- ``affinity``: age band x category (young like A, middle-aged B, older C) of
  size 0.35, plus a per-user taste per category (``N(0, taste_sd)``);
- ``price``: price sensitivity ``-0.006 * (price - 55) * s_user`` with
  ``s_user ~ U(0.5, 1.5)``;
- ``noise ~ N(0, noise_sd)`` then rounding to the 1..5 scale.

The noise floor is the RMSE of the best possible predictor, E[rating | user, item],
computed exactly from that distribution; no model can beat it on average.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

MU = 3.2
LEVELS = np.arange(1, 6)


def _age_band(age: np.ndarray) -> np.ndarray:
    return np.digitize(age, [35, 52])  # 0: 18-34, 1: 35-51, 2: 52-70


def generate_ratings(
    n_users: int = 100,
    n_items: int = 50,
    density: float = 0.8,
    noise_sd: float = 0.45,
    seed: int = 7,
    user_sd: float = 0.75,
    item_sd: float = 0.6,
    taste_sd: float = 0.3,
) -> pd.DataFrame:
    """Generate the ratings table; ``expected_rating`` is the oracle (not a feature)."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {
            "user_id": np.arange(1, n_users + 1),
            "user_age": rng.integers(18, 71, n_users),
            "user_gender": rng.choice(["M", "F"], n_users),
        }
    )
    items = pd.DataFrame(
        {
            "item_id": np.arange(1, n_items + 1),
            "item_category": rng.choice(["A", "B", "C"], n_items),
            "item_price": np.round(rng.uniform(10, 100, n_items), 2),
        }
    )
    b_user = rng.normal(0, user_sd, n_users)
    b_item = rng.normal(0, item_sd, n_items)
    taste = rng.normal(0, taste_sd, (n_users, 3))
    sensitivity = rng.uniform(0.5, 1.5, n_users)

    pairs = [(u, i) for u in range(n_users) for i in range(n_items) if rng.random() < density]
    u_idx, i_idx = (np.array(x) for x in zip(*pairs, strict=True))
    cat = items["item_category"].map({"A": 0, "B": 1, "C": 2}).to_numpy()[i_idx]
    band = _age_band(users["user_age"].to_numpy()[u_idx])
    latent = (
        MU
        + b_user[u_idx]
        + b_item[i_idx]
        + 0.35 * (band == cat)
        + taste[u_idx, cat]
        - 0.006 * (items["item_price"].to_numpy()[i_idx] - 55) * sensitivity[u_idx]
    )
    observed = np.clip(np.round(latent + rng.normal(0, noise_sd, len(latent))), 1, 5)
    expected, _ = rating_moments(latent, noise_sd)

    df = pd.concat(
        [users.iloc[u_idx].reset_index(drop=True), items.iloc[i_idx].reset_index(drop=True)],
        axis=1,
    )
    df["rating"] = observed.astype(int)
    df["expected_rating"] = expected
    return df[
        [
            "user_id",
            "user_age",
            "user_gender",
            "item_id",
            "item_category",
            "item_price",
            "rating",
            "expected_rating",
        ]
    ]


def rating_moments(latent: np.ndarray, noise_sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the rounded, clipped rating given its latent value."""
    edges = np.array([-np.inf, 1.5, 2.5, 3.5, 4.5, np.inf])
    cdf = norm.cdf((edges[None, :] - latent[:, None]) / noise_sd)
    probs = np.diff(cdf, axis=1)
    mean = probs @ LEVELS
    var = probs @ LEVELS**2 - mean**2
    return mean, var


def noise_floor_rmse(df: pd.DataFrame) -> float:
    """RMSE of the oracle predictor on these rows (the irreducible error, as measured)."""
    return float(np.sqrt(np.mean((df["rating"] - df["expected_rating"]) ** 2)))
