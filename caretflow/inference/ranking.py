"""Item catalogue stored with a recommender model, top-k ranking, offline ranking metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd

PRIOR_SMOOTHING = 5.0


def _level_columns(train: pd.DataFrame, key: str, candidates: list[str]) -> list[str]:
    """Columns that never vary within one value of ``key`` (user-level or item-level)."""
    nunique = train.groupby(key)[candidates].nunique()
    return [c for c in candidates if (nunique[c] <= 1).all()]


def build_catalogue(train: pd.DataFrame, ds) -> dict | None:
    """Users, items, who rated what and item priors, from the training split only."""
    rec = ds.get("recommender")
    if not rec:
        return None
    user, item, target = rec.user, rec.item, ds.target
    others = [c for c in ds.schema if c not in (user, item)]
    user_cols = _level_columns(train, user, others)
    item_cols = [c for c in _level_columns(train, item, others) if c not in user_cols]
    users = train.groupby(user, sort=True)[user_cols].first().reset_index()
    items = train.groupby(item, sort=True)[item_cols].first().reset_index()
    stats = train.groupby(item, sort=True)[target].agg(["sum", "count"])
    mean = float(train[target].mean())
    prior = (stats["sum"] + PRIOR_SMOOTHING * mean) / (stats["count"] + PRIOR_SMOOTHING)
    return {
        "user": user,
        "item": item,
        "users": {c: users[c].to_numpy() for c in users},
        "items": {c: items[c].to_numpy() for c in items},
        "item_prior": prior.reindex(items[item]).to_numpy(dtype=float),
        "rated_users": train[user].to_numpy(),
        "rated_items": train[item].to_numpy(),
    }


def _keys(values) -> np.ndarray:
    """Ids as strings (the keys the id encoders and factorization models use)."""
    return np.asarray(values).astype(str)


def _unseen(known, values) -> np.ndarray:
    """True where a value of ``values`` is not among the ``known`` ids (compared as keys).

    Integer ids are looked up by bisection (``build_catalogue`` sorts them): a request whose
    ids are all found pays O(log n). Only when bisection misses one is the catalogue checked
    to be sorted (one pass over it; bisection finds every id that is there only then), and
    ids kept in any other order are looked for as text keys are.
    """
    known, values = np.asarray(known), np.asarray(values)
    if known.dtype.kind in "iu" and values.dtype.kind in "iu":  # same keys, no conversion
        if not len(known):
            return np.ones(values.shape, dtype=bool)
        unseen = known[np.minimum(np.searchsorted(known, values), len(known) - 1)] != values
        if not unseen.any() or np.all(known[:-1] <= known[1:]):
            return unseen
        return ~np.isin(values, known)
    return ~np.isin(_keys(values), _keys(known))


def cold_start(catalogue: dict, X) -> np.ndarray:
    """True for each row whose user or item id was not in the training split.

    The catalogue is built from the rows the pipeline was fitted on, so "not in it" is what
    every family answers from priors or biases: the target statistics encoders' unseen ids,
    the factorization models' ``cold_start``. ``/predict`` and ``/recommend`` both ask this.

    Args:
        catalogue: the model's item catalogue (``build_catalogue``).
        X: columns (a mapping or DataFrame); a missing user or item column is not checked.

    Returns:
        One bool per row.
    """
    cold = None
    for side in ("user", "item"):
        column = catalogue[side]
        if column in X:
            unseen = _unseen(catalogue[f"{side}s"][column], X[column])
            cold = unseen if cold is None else cold | unseen
    if cold is None:
        raise ValueError(f"no {catalogue['user']!r} or {catalogue['item']!r} column to check")
    return cold


def recommend(model, user_id, k: int = 10, exclude_rated: bool = True) -> dict:
    """Top-k catalogue items for ``user_id`` by predicted rating, with intervals.

    An unknown user gets the cold-start ranking by item priors (flagged ``cold_start``).
    """
    cat = model.catalogue
    if cat is None:
        raise ValueError("this model has no item catalogue (not a recommender)")
    items = cat["items"]
    n_items = len(items[cat["item"]])
    cold = bool(cold_start(cat, {cat["user"]: [user_id]})[0])
    if cold:
        point = cat["item_prior"]
        half = model.interval_halfwidth or 0.0
        lower, upper = point - half, point + half
        if model.target_range is not None:
            lower, upper = np.clip(lower, *model.target_range), np.clip(upper, *model.target_range)
    else:
        row = np.flatnonzero(_keys(cat["users"][cat["user"]]) == str(user_id))[0]
        X = dict(items)
        for col, values in cat["users"].items():
            X[col] = np.repeat(values[row : row + 1], n_items)
        point, lower, upper = model.predict_interval(X)
    keep = np.ones(n_items, dtype=bool)
    if exclude_rated and not cold:
        rated = cat["rated_items"][cat["rated_users"] == user_id]
        keep &= ~np.isin(items[cat["item"]], rated)
    candidates = np.flatnonzero(keep)
    top = candidates[np.argsort(-point[candidates], kind="stable")[:k]]
    return {
        "user_id": user_id,
        "cold_start": cold,
        "k": k,
        "items": [
            {
                "item_id": _plain(items[cat["item"]][i]),
                "predicted_rating": float(point[i]),
                "interval": {
                    "lower": float(lower[i]),
                    "upper": float(upper[i]),
                    "level": model.interval_level,
                },
            }
            for i in top
        ],
    }


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def ranking_metrics(users, items_pred, truth, k: int = 10, relevant: float = 4.0) -> dict:
    """Precision@k and NDCG@k over held-out ratings, relevance = rating >= ``relevant``.

    Each user's held-out items are ranked by prediction; users without a relevant held-out
    item are skipped. Precision divides by ``min(k, number of the user's held-out items)``.
    """
    frame = pd.DataFrame({"u": users, "p": items_pred, "r": np.asarray(truth) >= relevant})
    precisions, ndcgs = [], []
    for _, g in frame.groupby("u"):
        if not g["r"].any():
            continue
        ranked = g.sort_values("p", ascending=False, kind="stable")["r"].to_numpy()[:k]
        precisions.append(ranked.sum() / len(ranked))
        discounts = 1.0 / np.log2(np.arange(2, len(ranked) + 2))
        ideal = np.sort(g["r"].to_numpy())[::-1][:k]
        ndcgs.append(float((ranked * discounts).sum() / (ideal * discounts[: len(ideal)]).sum()))
    return {
        f"precision_at_{k}": float(np.mean(precisions)) if precisions else float("nan"),
        f"ndcg_at_{k}": float(np.mean(ndcgs)) if ndcgs else float("nan"),
    }
