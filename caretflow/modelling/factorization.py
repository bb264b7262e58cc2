"""Latent-factor collaborative filtering (BaselineOnly, SVD, SVD++) as a scikit-learn regressor.

SVD and SVD++ are fitted by ``caretflow.modelling.sgd`` (Surprise's SGD updates in one
compiled loop, reproducing the library's fits several times faster), the bias baseline by
scikit-surprise (ALS). The fitted biases and factors are numpy arrays, so the logged model
holds only numpy and plain types (skops-safe) and predicts without surprise. The
estimators here take the raw input columns (a DataFrame or a mapping of column -> array),
not the ``TabularFeatures`` matrix: ``takes_raw_inputs`` tells
``caretflow.modelling.build.make_pipeline`` to pass them through.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin

from caretflow.modelling.sgd import Factors, fit_sgd

ALGORITHMS = ("baseline", "svd", "svdpp")


def id_keys(X, column: str) -> np.ndarray:
    """The ids of ``column`` as strings (the same keys as the id encoders use)."""
    return np.asarray(X[column]).astype(str)


def positions(known: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Row of each key in the sorted ``known`` array; -1 for a key not in it.

    The fitted tables carry a trailing zero row, so -1 picks "unknown" without a branch.
    """
    if len(known) == 0:
        return np.full(len(keys), -1)
    pos = np.clip(np.searchsorted(known, keys), 0, len(known) - 1)
    return np.where(known[pos] == keys, pos, -1)


def pad(table: np.ndarray) -> np.ndarray:
    """``table`` with a zero row appended (what an unknown id reads)."""
    return np.concatenate([table, np.zeros((1, *table.shape[1:]), dtype=table.dtype)])


def for_dataset(estimator, ds):
    """Fill the data-set-dependent params an estimator left as None from the data set config.

    ``user`` / ``item`` come from ``dataset.recommender``; ``numeric`` / ``categorical``
    (side features) from ``dataset.features``. Estimators without those params are returned
    unchanged.

    Raises:
        ValueError: the estimator needs user and item columns but the data set has no
            ``recommender`` section.
    """
    params = estimator.get_params(deep=False)
    fill = {}
    if "user" in params and (params["user"] is None or params["item"] is None):
        rec = ds.get("recommender")
        if not rec:
            raise ValueError(
                f"{type(estimator).__name__} needs user x item data "
                f"(dataset {ds.name!r} has no recommender section)"
            )
        fill.update(user=params["user"] or rec.user, item=params["item"] or rec.item)
    if "numeric" in params and params["numeric"] is None:
        fill["numeric"] = list(ds.features.numeric)
    if "categorical" in params and params["categorical"] is None:
        fill["categorical"] = list(ds.features.categorical)
    return estimator.set_params(**fill) if fill else estimator


class RawInputRegressor(RegressorMixin, BaseEstimator):
    """Base of the estimators that read the user and item columns themselves."""

    takes_raw_inputs = True

    def _ids(self, X) -> tuple[np.ndarray, np.ndarray]:
        users = positions(self.users_, id_keys(X, self.user))
        items = positions(self.items_, id_keys(X, self.item))
        return users, items

    def cold_start(self, X) -> np.ndarray:
        """True for the rows whose user or item was not seen in training."""
        users, items = self._ids(X)
        return (users < 0) | (items < 0)


class LatentFactorRegressor(RawInputRegressor):
    """Biased latent-factor model ``mu + b_u + b_i + q_i . p_u``, Surprise's algorithms.

    ``svdpp`` is Koren's SVD++ (KDD 2008): the user vector is ``p_u + |N(u)|^-1/2 sum_j y_j``
    over the items the user rated in training (the implicit feedback). ``svd`` is the same
    without the ``y_j`` term (Funk / Koren biased SVD, fitted by SGD); ``baseline`` keeps the
    biases only (Koren's baseline predictor, fitted by ALS). After fitting, each known user's
    effective vector is stored, so prediction is one dot product per row.

    Unknown users or items read zero biases and factors: the bias answer
    (``mu + b_i``, ``mu + b_u``, or ``mu``).

    Args:
        user: user id column (None: from the data set's ``recommender``).
        item: item id column.
        algorithm: ``baseline``, ``svd`` or ``svdpp``.
        n_factors: latent dimensions.
        n_epochs: SGD passes (ALS passes for ``baseline``).
        lr_all: SGD learning rate.
        reg_all: L2 regularisation of biases and factors.
        random_state: seed of the factor initialisation.
    """

    def __init__(
        self,
        user=None,
        item=None,
        algorithm="svdpp",
        n_factors=20,
        n_epochs=20,
        lr_all=0.007,
        reg_all=0.02,
        random_state=0,
    ):
        self.user = user
        self.item = item
        self.algorithm = algorithm
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr_all = lr_all
        self.reg_all = reg_all
        self.random_state = random_state

    def _algo(self):
        import surprise

        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: unknown {self.algorithm!r}; known: {ALGORITHMS}")
        return surprise.BaselineOnly(
            bsl_options={"method": "als", "n_epochs": self.n_epochs}, verbose=False
        )

    def fit(self, X, y):
        """Fit on the (user, item, rating) triples of the training rows."""
        y = np.asarray(y, dtype=float)
        users, items = id_keys(X, self.user), id_keys(X, self.item)
        if self.algorithm in ("svd", "svdpp"):
            f = fit_sgd(users, items, y, self.algorithm, self.n_factors, self.n_epochs,
                        self.lr_all, self.reg_all, self.random_state)
        else:
            f = self._fit_surprise(users, items, y)
        self.mu_ = f.mu
        # Inner ids -> sorted raw ids, so prediction can look rows up by binary search.
        u_order, i_order = np.argsort(f.users), np.argsort(f.items)
        self.users_, self.items_ = f.users[u_order], f.items[i_order]
        self.user_bias_, self.item_bias_ = pad(f.user_bias[u_order]), pad(f.item_bias[i_order])
        self.user_factors_ = pad(f.user_factors[u_order])
        self.item_factors_ = pad(f.item_factors[i_order])
        return self

    def _fit_surprise(self, users, items, y) -> Factors:
        """The bias baseline (ALS) by scikit-surprise, as arrays in inner-id order."""
        import surprise

        algo = self._algo()
        frame = pd.DataFrame({"u": users, "i": items, "r": y})
        reader = surprise.Reader(rating_scale=(float(y.min()), float(y.max())))
        trainset = surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
        algo.fit(trainset)
        raw_u = np.array([trainset.to_raw_uid(u) for u in range(trainset.n_users)])
        raw_i = np.array([trainset.to_raw_iid(i) for i in range(trainset.n_items)])
        empty_u, empty_i = np.zeros((trainset.n_users, 0)), np.zeros((trainset.n_items, 0))
        return Factors(raw_u, raw_i, float(trainset.global_mean), np.asarray(algo.bu, dtype=float),
                       np.asarray(algo.bi, dtype=float), empty_u, empty_i)

    def predict(self, X) -> np.ndarray:
        """Predicted ratings (unclipped; the logged model clips to the target range)."""
        u, i = self._ids(X)
        dot = np.einsum("nk,nk->n", self.user_factors_[u], self.item_factors_[i])
        return self.mu_ + self.user_bias_[u] + self.item_bias_[i] + dot
