"""MovieLens-100k adapter: read the standard ml-100k files a user downloads themselves.

The data is not shipped (its licence forbids redistribution). Point
``dataset.source.path`` at the folder that holds ``u.data``, ``u.user`` and ``u.item``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from caretflow.data.tables import DataValidationError

FILES = ("u.data", "u.user", "u.item")
GENRES = [
    "unknown",
    "action",
    "adventure",
    "animation",
    "children",
    "comedy",
    "crime",
    "documentary",
    "drama",
    "fantasy",
    "film_noir",
    "horror",
    "musical",
    "mystery",
    "romance",
    "sci_fi",
    "thriller",
    "war",
    "western",
]
GENRE_COLUMNS = [f"genre_{g}" for g in GENRES]


def load_movielens(folder: Path) -> pd.DataFrame:
    """One row per rating: user and item features joined, ``zip`` dropped (personal data)."""
    missing = [f for f in FILES if not (folder / f).exists()]
    if missing:
        raise DataValidationError(f"dataset.source.path: {folder} lacks {missing} (ml-100k files)")
    try:
        ratings = pd.read_csv(
            folder / "u.data",
            sep="\t",
            header=None,
            names=["user_id", "item_id", "rating", "timestamp"],
        )
        users = pd.read_csv(
            folder / "u.user",
            sep="|",
            header=None,
            names=["user_id", "user_age", "user_gender", "user_occupation", "zip"],
        )
        items = pd.read_csv(
            folder / "u.item",
            sep="|",
            header=None,
            encoding="latin-1",
            names=["item_id", "title", "release_date", "video_release_date", "url", *GENRE_COLUMNS],
        )
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{folder}: not in ml-100k format ({exc})") from exc
    year = pd.to_datetime(items["release_date"], format="%d-%b-%Y", errors="coerce").dt.year
    items["item_year"] = year.fillna(year.median() if year.notna().any() else 1995).astype(int)
    df = ratings.merge(users.drop(columns=["zip"]), on="user_id", how="left")
    df = df.merge(items[["item_id", "item_year", *GENRE_COLUMNS]], on="item_id", how="left")
    return df.drop(columns=["timestamp"])
