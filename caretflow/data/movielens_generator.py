"""MovieLens-100k-shaped synthetic ratings, written in the ml-100k file format.

The shape follows ml-100k: 943 users, 1682 items, about 100k ratings (about 6 % density),
every user with at least 20 ratings and a long tail up to several hundred, long-tail item
popularity; users with age, gender, occupation and zip; items with a release date and the
19 genre flags. The ground truth is a latent-factor model with missing-not-at-random
selection (users mostly rate what they expect to like):

- ``p_u = A[age band] + G[gender] + e_u``, ``e_u ~ N(0, user_factor_sd)`` (k dimensions);
- ``q_i = mean of the genre vectors of the item's genres + e_i``, ``e_i ~ N(0, item_factor_sd)``;
- ``popularity_i = exp(N(0, popularity_sd))``: a long-tailed (log-normal) item popularity;
- ``latent = mu + b_u + b_i + p_u . q_i`` with ``b_u ~ N(0, user_sd)`` and
  ``b_i ~ N(0, item_sd) + 0.15 z(log popularity_i)`` (popular items are rated a little higher);
- a user rates ``20 + LogNormal`` items (at most ``max_ratings``), drawn without replacement
  with weight ``popularity_i * exp(selection * (p_u . q_i + b_i))``: which items a user rated
  says something about their taste (what SVD++ and the FM's implicit group use);
- ``rating = clip(round(latent + N(0, noise_sd)), 1, 5)``.

The oracle ``E[rating | user, item]`` (rounding and clipping included) is written to
``u.truth``; its RMSE on any rows is the noise floor (``noise_floor_rmse``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from caretflow.data.movielens import GENRES
from caretflow.data.ratings_generator import rating_moments

log = logging.getLogger(__name__)
OCCUPATIONS = {  # ml-100k's occupations with their approximate shares
    "student": 196, "other": 105, "educator": 95, "administrator": 79, "engineer": 67,
    "programmer": 66, "librarian": 51, "writer": 45, "executive": 32, "scientist": 31,
    "artist": 28, "technician": 27, "marketing": 26, "entertainment": 18, "healthcare": 16,
    "retired": 14, "lawyer": 12, "salesman": 12, "none": 9, "homemaker": 7, "doctor": 7,
}
GENRE_COUNTS = [2, 251, 135, 42, 122, 505, 109, 50, 725, 22, 24, 92, 56, 61, 247, 101, 251,
                71, 27]  # ml-100k items per genre, in GENRES order
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _users(rng, n: int) -> pd.DataFrame:
    occ = np.array(list(OCCUPATIONS))
    share = np.array(list(OCCUPATIONS.values()), dtype=float)
    return pd.DataFrame({
        "user_id": np.arange(1, n + 1),
        "age": np.clip(np.round(rng.normal(33, 11, n)), 7, 73).astype(int),
        "gender": np.where(rng.random(n) < 0.71, "M", "F"),
        "occupation": rng.choice(occ, n, p=share / share.sum()),
        "zip": [f"{z:05d}" for z in rng.integers(0, 100000, n)],
    })


def _items(rng, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    share = np.array(GENRE_COUNTS, dtype=float) / sum(GENRE_COUNTS)
    flags = np.zeros((n, len(GENRES)), dtype=int)
    for i, k in enumerate(rng.choice([1, 2, 3], n, p=[0.5, 0.35, 0.15])):
        flags[i, rng.choice(len(GENRES), k, replace=False, p=share)] = 1
    year = np.clip(1998 - np.round(rng.lognormal(1.3, 1.0, n)), 1922, 1998).astype(int)
    dates = [f"{d:02d}-{MONTHS[m]}-{y}" for d, m, y in
             zip(rng.integers(1, 29, n), rng.integers(0, 12, n), year, strict=True)]
    items = pd.DataFrame({"item_id": np.arange(1, n + 1), "release_date": dates})
    items["title"] = [f"Item {i} ({y})" for i, y in zip(items["item_id"], year, strict=True)]
    return items, flags


def generate_movielens(
    n_users: int = 943,
    n_items: int = 1682,
    mean_ratings: float = 106.0,
    max_ratings: int = 737,
    n_factors: int = 8,
    user_factor_sd: float = 0.35,
    item_factor_sd: float = 0.35,
    side_sd: float = 0.25,
    user_sd: float = 0.35,
    item_sd: float = 0.3,
    popularity_sd: float = 1.2,
    selection: float = 1.5,
    noise_sd: float = 0.8,
    mu: float = 2.75,
    seed: int = 11,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three ml-100k tables: ratings (+ ``expected_rating``), users, items (+ genre flags).

    Returns:
        ``(ratings, users, items)``; ``ratings`` has ``user_id, item_id, rating, timestamp,
        expected_rating``; ``items`` the ml-100k columns with ``genre_*`` flags.
    """
    rng = np.random.default_rng(seed)
    users = _users(rng, n_users)
    items, flags = _items(rng, n_items)
    band = np.digitize(users["age"].to_numpy(), [25, 35, 50])
    p = (rng.normal(0, side_sd, (4, n_factors))[band]
         + rng.normal(0, side_sd, (2, n_factors))[(users["gender"] == "F").to_numpy().astype(int)]
         + rng.normal(0, user_factor_sd, (n_users, n_factors)))
    genre_vec = rng.normal(0, side_sd * 2, (len(GENRES), n_factors))
    q = (flags @ genre_vec) / flags.sum(axis=1, keepdims=True)
    q = q + rng.normal(0, item_factor_sd, (n_items, n_factors))
    popularity = np.exp(rng.normal(0, popularity_sd, n_items))
    log_pop = np.log(popularity)
    b_user = rng.normal(0, user_sd, n_users)
    b_item = rng.normal(0, item_sd, n_items) + 0.15 * (log_pop - log_pop.mean()) / log_pop.std()
    counts = 20 + np.round(rng.lognormal(np.log(mean_ratings - 20) - 0.5, 1.0, n_users))
    counts = np.minimum(counts, max_ratings).astype(int)
    # Weighted sampling without replacement, all users at once: the top ``n`` of
    # ``log weight + Gumbel noise`` (Efraimidis-Spirakis / Gumbel-top-k).
    keys = np.log(popularity)[None, :] + selection * (p @ q.T + b_item[None, :])
    keys += rng.gumbel(size=keys.shape)
    order = np.argsort(-keys, axis=1)
    u_idx = np.repeat(np.arange(n_users), counts)
    i_idx = np.concatenate([order[u, :n] for u, n in enumerate(counts)])
    latent = mu + b_user[u_idx] + b_item[i_idx] + np.einsum("nk,nk->n", p[u_idx], q[i_idx])
    rating = np.clip(np.round(latent + rng.normal(0, noise_sd, len(latent))), 1, 5).astype(int)
    expected, _ = rating_moments(latent, noise_sd)
    ratings = pd.DataFrame({
        "user_id": u_idx + 1, "item_id": i_idx + 1, "rating": rating,
        "timestamp": 874724710 + rng.integers(0, 20_000_000, len(rating)),
        "expected_rating": expected,
    })
    items = pd.concat([items, pd.DataFrame(flags, columns=[f"genre_{g}" for g in GENRES])],
                      axis=1)
    return ratings, users, items


def write_movielens(folder: str | Path, **params) -> Path:
    """Write ``u.data``, ``u.user``, ``u.item`` (ml-100k format) and ``u.truth`` to ``folder``.

    ``u.truth`` (tab separated user, item, expected rating) is the oracle, one line per
    ``u.data`` line in the same order; the adapter ignores it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ratings, users, items = generate_movielens(**params)
    ratings[["user_id", "item_id", "rating", "timestamp"]].to_csv(
        folder / "u.data", sep="\t", header=False, index=False)
    ratings[["user_id", "item_id", "expected_rating"]].to_csv(
        folder / "u.truth", sep="\t", header=False, index=False, float_format="%.6f")
    users.to_csv(folder / "u.user", sep="|", header=False, index=False)
    genre_cols = [f"genre_{g}" for g in GENRES]
    out = items[["item_id", "title", "release_date"]].assign(video="", url="")
    out = pd.concat([out, items[genre_cols]], axis=1)
    out.to_csv(folder / "u.item", sep="|", header=False, index=False, encoding="latin-1")
    log.info("%d ratings, %d users, %d items -> %s", len(ratings), len(users), len(items), folder)
    return folder


def read_truth(folder: str | Path) -> pd.DataFrame:
    """The oracle ``expected_rating`` per (user_id, item_id) written by ``write_movielens``."""
    return pd.read_csv(Path(folder) / "u.truth", sep="\t", header=None,
                       names=["user_id", "item_id", "expected_rating"])


def main(argv=None) -> None:
    """``python -m caretflow.data.movielens_generator --out data/ml-synth [--seed N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/ml-synth")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_movielens(args.out, seed=args.seed)


if __name__ == "__main__":
    main()
