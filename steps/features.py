"""Feature transformers that run inside the logged pipeline (fit on training rows only).

Both accept a DataFrame or a plain mapping of column -> array, so the server can
skip building a DataFrame for one record.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import KFold


def _col(X, name: str) -> np.ndarray:
    return np.asarray(X[name], dtype=float)


# Engineered churn features, referenced by name from the data set config.
ENGINEERED = {
    "balance_to_salary": lambda X: _col(X, "Balance") / (_col(X, "EstimatedSalary") + 1000.0),
    "zero_balance": lambda X: (_col(X, "Balance") == 0).astype(float),
    "products_x_active": lambda X: _col(X, "NumOfProducts") * _col(X, "IsActiveMember"),
    "age_x_active": lambda X: _col(X, "Age") * _col(X, "IsActiveMember"),
    "single_product": lambda X: (_col(X, "NumOfProducts") == 1).astype(float),
    "many_products": lambda X: (_col(X, "NumOfProducts") >= 3).astype(float),
}


class TabularFeatures(TransformerMixin, BaseEstimator):
    """Numeric columns, engineered features and one-hot categories, standardised.

    Args:
        numeric: numeric input columns (used as they are, then standardised).
        categories: categorical column -> allowed categories (one-hot; unknown -> all zero).
        engineered: names from ``ENGINEERED``.
        scale: standardise numeric and engineered columns.
    """

    def __init__(self, numeric=(), categories=None, engineered=(), scale=True):
        self.numeric = numeric
        self.categories = categories
        self.engineered = engineered
        self.scale = scale

    def _dense(self, X) -> np.ndarray:
        cols = [_col(X, c) for c in self.numeric]
        cols += [ENGINEERED[name](X) for name in self.engineered]
        return np.column_stack(cols) if cols else np.empty((_n_rows(X), 0))

    def fit(self, X, y=None):
        """Learn the standardisation of the numeric block."""
        unknown = [n for n in self.engineered if n not in ENGINEERED]
        if unknown:
            raise ValueError(f"unknown engineered features {unknown}; known: {sorted(ENGINEERED)}")
        dense = self._dense(X)
        self.mean_ = dense.mean(axis=0) if self.scale else np.zeros(dense.shape[1])
        std = dense.std(axis=0) if self.scale else np.ones(dense.shape[1])
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, X) -> np.ndarray:
        """Feature matrix (float64)."""
        blocks = [(self._dense(X) - self.mean_) / self.scale_]
        for col, cats in (self.categories or {}).items():
            values = np.asarray(X[col]).astype(str)
            blocks.append((values[:, None] == np.asarray(cats)[None, :]).astype(float))
        return np.hstack(blocks)

    def get_feature_names_out(self, input_features=None):
        """Output column names, in matrix order."""
        names = [*self.numeric, *self.engineered]
        for col, cats in (self.categories or {}).items():
            names += [f"{col}={c}" for c in cats]
        return np.asarray(names, dtype=object)


def _n_rows(X) -> int:
    return len(X[next(iter(X.keys()))]) if isinstance(X, Mapping) else len(X)


def _group_keys(X, cols) -> np.ndarray:
    parts = [np.asarray(X[c]).astype(str) for c in cols]
    keys = parts[0]
    for p in parts[1:]:
        keys = np.char.add(np.char.add(keys, "|"), p)
    return keys


class TargetStatsEncoder(TransformerMixin, BaseEstimator):
    """Shrunk mean target and log count per id (or id x category) group.

    ``fit_transform`` encodes each training row out-of-fold, so the estimator never
    sees a row's own target; ``transform`` uses statistics from all training rows.
    Unseen groups fall back to the global mean (the prior) with a count of 0.

    Args:
        groups: list of column lists, e.g. ``[["user_id"], ["user_id", "item_category"]]``.
        smoothing: pseudo-count pulling small groups towards the prior.
        n_splits: folds for the out-of-fold encoding.
        random_state: fold shuffling seed.
    """

    def __init__(self, groups=(), smoothing=5.0, n_splits=5, random_state=0):
        self.groups = groups
        self.smoothing = smoothing
        self.n_splits = n_splits
        self.random_state = random_state

    @staticmethod
    def output_names(groups) -> list[str]:
        """Names of the columns this encoder adds."""
        names = []
        for cols in groups:
            key = "__".join(cols)
            names += [f"te_{key}", f"n_{key}"]
        return names

    def _stats(self, keys: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
        uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        sums = np.bincount(inverse, weights=y)
        return {k: [float(s), float(n)] for k, s, n in zip(uniq, sums, counts, strict=True)}

    def _encode(self, keys, stats, prior) -> tuple[np.ndarray, np.ndarray]:
        sn = np.array([stats.get(k, (0.0, 0.0)) for k in keys], dtype=float).reshape(-1, 2)
        denom = sn[:, 1] + self.smoothing
        safe = np.where(denom > 0, denom, 1.0)
        mean = np.where(denom > 0, (sn[:, 0] + self.smoothing * prior) / safe, prior)
        return mean, np.log1p(sn[:, 1])

    def fit(self, X, y):
        """Store per-group sums and counts of the target."""
        y = np.asarray(y, dtype=float)
        self.prior_ = float(y.mean())
        self.stats_ = [self._stats(_group_keys(X, cols), y) for cols in self.groups]
        return self

    def transform(self, X) -> dict[str, np.ndarray]:
        """Input columns plus the encodings, as a column mapping."""
        out = {c: np.asarray(X[c]) for c in X}
        for cols, stats in zip(self.groups, self.stats_, strict=True):
            key = "__".join(cols)
            out[f"te_{key}"], out[f"n_{key}"] = self._encode(
                _group_keys(X, cols), stats, self.prior_
            )
        return out

    def fit_transform(self, X, y=None, **fit_params):
        """Fit on all rows, but encode each row from the other folds only."""
        self.fit(X, y)
        y = np.asarray(y, dtype=float)
        out = {c: np.asarray(X[c]) for c in X}
        folds = list(KFold(self.n_splits, shuffle=True, random_state=self.random_state).split(y))
        for cols in self.groups:
            key, keys = "__".join(cols), _group_keys(X, cols)
            te, cnt = np.empty(len(y)), np.empty(len(y))
            for fit_idx, enc_idx in folds:
                stats = self._stats(keys[fit_idx], y[fit_idx])
                te[enc_idx], cnt[enc_idx] = self._encode(keys[enc_idx], stats, y[fit_idx].mean())
            out[f"te_{key}"], out[f"n_{key}"] = te, cnt
        return out
