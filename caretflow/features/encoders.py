"""Id encoders for recommender data: out-of-fold target statistics and baseline biases.

Both fit on training rows only. ``fit_transform`` (what a pipeline calls while fitting)
encodes each training row from the other folds, so the estimator never sees a row's own
target; ``transform`` uses what all training rows taught. Unseen ids fall back to priors.
Outputs are column mappings (the input columns plus the new ones).

Fitting and encoding key the fitted dicts by Python strings (``_key_list``): the keys numpy
string arrays spelled before (models fitted then still read), without their slow joins.
"""

from __future__ import annotations

from itertools import chain

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import KFold


def _columns(X) -> dict[str, np.ndarray]:
    return {c: np.asarray(X[c]) for c in X}


def _take(X, idx) -> dict[str, np.ndarray]:
    return {c: np.asarray(X[c])[idx] for c in X}


def _texts(values) -> list[str]:
    """``np.asarray(values).astype(str)`` as a list of Python strings (ints, text: directly)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return list(map(str, arr.tolist()))
    return arr.tolist() if arr.dtype.kind == "U" else arr.astype(str).tolist()


def _key_list(X, cols) -> list[str]:
    """Each row's key: the values of ``cols`` as text, joined by ``|`` (the fitted dicts' keys).

    The spelling is numpy's ``astype(str)`` of each column (what models fitted before
    kept in their state), built as Python strings.
    """
    parts = [_texts(X[c]) for c in cols]
    return parts[0] if len(parts) == 1 else ["|".join(p) for p in zip(*parts, strict=True)]


def _looked_up(table: dict, keys: list[str]) -> np.ndarray:
    """Each key's fitted value (0 for a key not seen in fitting)."""
    return np.fromiter((table.get(k, 0.0) for k in keys), float, len(keys))


def _group_sums(keys: list[str], values: np.ndarray):
    """Distinct keys (first-seen order), each row's key number, and per-key sums and counts."""
    inverse, uniq = pd.factorize(np.asarray(keys, dtype=object))
    return uniq.tolist(), inverse, np.bincount(inverse, weights=values), np.bincount(inverse)


class OutOfFoldEncoder(TransformerMixin, BaseEstimator):
    """Base class: subclasses define ``_learn(X, y) -> state`` and ``_encode(X, state)``."""

    def __init__(self, n_splits=5, random_state=0):
        self.n_splits = n_splits
        self.random_state = random_state

    def fit(self, X, y):
        """Learn the encoding from all training rows."""
        self.state_ = self._learn(X, np.asarray(y, dtype=float))
        return self

    def transform(self, X) -> dict[str, np.ndarray]:
        """Input columns plus the encodings."""
        out = _columns(X)
        out.update(self._encode(X, self.state_))
        return out

    def fit_transform(self, X, y=None, **fit_params):
        """Fit on all rows, but encode each row from the other folds only."""
        self.fit(X, y)
        y = np.asarray(y, dtype=float)
        out, encoded = _columns(X), {}
        folds = KFold(self.n_splits, shuffle=True, random_state=self.random_state).split(y)
        for fit_idx, enc_idx in folds:
            state = self._learn(_take(X, fit_idx), y[fit_idx])
            for name, values in self._encode(_take(X, enc_idx), state).items():
                encoded.setdefault(name, np.empty(len(y)))[enc_idx] = values
        out.update(encoded)
        return out


class TargetStatsEncoder(OutOfFoldEncoder):
    """Shrunk mean target and log count per id (or id x category) group.

    Args:
        groups: list of column lists, e.g. ``[["user_id"], ["user_id", "item_category"]]``.
        smoothing: pseudo-count pulling small groups towards the global mean.
    """

    def __init__(self, groups=(), smoothing=5.0, n_splits=5, random_state=0):
        super().__init__(n_splits=n_splits, random_state=random_state)
        self.groups = groups
        self.smoothing = smoothing

    @staticmethod
    def output_names(groups) -> list[str]:
        """Names of the columns this encoder adds."""
        return [f"{p}_{'__'.join(cols)}" for cols in groups for p in ("te", "n")]

    def _learn(self, X, y) -> dict:
        stats = []
        for cols in self.groups:
            uniq, _, sums, counts = _group_sums(_key_list(X, cols), y)
            pairs = zip(sums.tolist(), counts.astype(float).tolist(), strict=True)
            stats.append(dict(zip(uniq, map(list, pairs), strict=True)))
        return {"prior": float(y.mean()), "stats": stats}

    def _encode(self, X, state) -> dict[str, np.ndarray]:
        if not self.groups:
            return {}
        keys = [_key_list(X, cols) for cols in self.groups]
        # (groups, rows, 2): every group's sums and counts, encoded in one pass
        pairs = (stats.get(k, (0.0, 0.0))
                 for group_keys, stats in zip(keys, state["stats"], strict=True)
                 for k in group_keys)
        shape = (len(keys), len(keys[0]), 2)
        sn = np.fromiter(chain.from_iterable(pairs), float, shape[0] * shape[1] * 2)
        sn = sn.reshape(shape)
        denom = sn[..., 1] + self.smoothing
        safe = np.where(denom > 0, denom, 1.0)
        mean = np.where(
            denom > 0, (sn[..., 0] + self.smoothing * state["prior"]) / safe, state["prior"]
        )
        counts = np.log1p(sn[..., 1])
        out = {}
        for g, cols in enumerate(self.groups):
            key = "__".join(cols)
            out[f"te_{key}"], out[f"n_{key}"] = mean[g], counts[g]
        return out


class BaselineBiases(OutOfFoldEncoder):
    """Regularised user and item biases, ``mu + b_user + b_item`` (the baseline predictor).

    Fitted by alternating shrunk means: each item's bias from the ratings net of user
    biases, each user's net of item biases. Unseen users or items get a bias of 0.

    Args:
        user: user id column.
        item: item id column.
        reg: shrinkage pseudo-count for the biases.
        n_iter: alternating passes.
        extra: column groups (e.g. ``[["user_id", "item_category"]]``) whose shrunk mean
            residual after the user and item biases is added as ``bl_<cols>`` (a taste).
        extra_reg: shrinkage pseudo-count for the ``extra`` groups; None = ``reg``.
    """

    OUTPUT = ("bl_user", "bl_item", "bl_pred")

    def __init__(
        self,
        user="user_id",
        item="item_id",
        reg=5.0,
        n_iter=4,
        extra=(),
        n_splits=5,
        random_state=0,
        extra_reg=None,
    ):
        super().__init__(n_splits=n_splits, random_state=random_state)
        self.user = user
        self.item = item
        self.reg = reg
        self.n_iter = n_iter
        self.extra = extra
        self.extra_reg = extra_reg

    @classmethod
    def output_names(cls, extra=()) -> list[str]:
        """Names of the columns this encoder adds."""
        return [*cls.OUTPUT, *(f"bl_{'__'.join(cols)}" for cols in extra)]

    def _learn(self, X, y) -> dict:
        mu = float(y.mean())
        users, u_inv, _, u_n = _group_sums(_key_list(X, [self.user]), y)
        items, i_inv, _, i_n = _group_sums(_key_list(X, [self.item]), y)
        b_u, b_i = np.zeros(len(users)), np.zeros(len(items))
        for _ in range(self.n_iter):
            b_i = np.bincount(i_inv, weights=y - mu - b_u[u_inv]) / (i_n + self.reg)
            b_u = np.bincount(u_inv, weights=y - mu - b_i[i_inv]) / (u_n + self.reg)
        resid = y - mu - b_u[u_inv] - b_i[i_inv]
        extra, extra_reg = [], self.reg if self.extra_reg is None else self.extra_reg
        for cols in self.extra:
            keys, _, sums, counts = _group_sums(_key_list(X, cols), resid)
            extra.append(dict(zip(keys, (sums / (counts + extra_reg)).tolist(), strict=True)))
        return {
            "mu": mu,
            "user": dict(zip(users, b_u.tolist(), strict=True)),
            "item": dict(zip(items, b_i.tolist(), strict=True)),
            "extra": extra,
        }

    def _encode(self, X, state) -> dict[str, np.ndarray]:
        bu = _looked_up(state["user"], _key_list(X, [self.user]))
        bi = _looked_up(state["item"], _key_list(X, [self.item]))
        out = {"bl_user": bu, "bl_item": bi, "bl_pred": state["mu"] + bu + bi}
        for cols, table in zip(self.extra, state["extra"], strict=True):
            out[f"bl_{'__'.join(cols)}"] = _looked_up(table, _key_list(X, cols))
        return out
