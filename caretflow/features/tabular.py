"""Feature transformers that run inside the logged pipeline (fit on training rows only).

Both accept a DataFrame or a plain mapping of column -> array, so the server can
skip building a DataFrame for one record.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


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
