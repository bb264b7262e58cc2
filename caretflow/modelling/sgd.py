"""Biased SVD and SVD++ fitted by SGD, compiled with numba: Surprise's updates, not its loop.

scikit-surprise's ``SVD.fit`` / ``SVDpp.fit`` run their updates in Cython but draw every
rating from a Python generator (``Trainset.all_ratings``), which costs most of a fit on
tables of MovieLens size; building its ``Trainset`` (dicts of raw ids) costs more. Here the
same updates run over integer arrays in one compiled loop. Ids get inner numbers in order
of first appearance and the ratings are visited user by user, each user's in data order,
and the factors are drawn from ``RandomState(seed)`` in Surprise's order, so a fit
reproduces Surprise's fitted biases and factors (``tests/test_caretflow_factorization.py``
checks it against the library).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Factors:
    """A fitted model: ids (inner order), global mean, biases and factors."""

    users: np.ndarray
    items: np.ndarray
    mu: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray  # user_factors are SVD++'s effective vectors (y_j folded in)


def _epochs(u, i, r, start, mu, bu, bi, pu, qi, yj, n_epochs, lr, reg, plus):  # pragma: no cover
    """SGD passes of biased SVD, or of SVD++ when ``plus`` (numba-compiled)."""
    k = pu.shape[1]
    implicit = np.zeros(k)  # stays zero for plain SVD
    rated, sqrt_n = i[:0], 1.0
    for _ in range(n_epochs):
        for n in range(len(r)):
            uu, ii = u[n], i[n]
            if plus:
                rated = i[start[uu]:start[uu + 1]]  # the user's items (ratings user-sorted)
                sqrt_n = np.sqrt(len(rated))
                implicit[:] = 0.0
                for j in rated:
                    for f in range(k):
                        implicit[f] += yj[j, f] / sqrt_n
            dot = 0.0
            for f in range(k):
                dot += qi[ii, f] * (pu[uu, f] + implicit[f])
            err = r[n] - (mu + bu[uu] + bi[ii] + dot)
            bu[uu] += lr * (err - reg * bu[uu])
            bi[ii] += lr * (err - reg * bi[ii])
            for f in range(k):
                puf, qif = pu[uu, f], qi[ii, f]
                pu[uu, f] += lr * (err * qif - reg * puf)
                qi[ii, f] += lr * (err * (puf + implicit[f]) - reg * qif)
                if plus:
                    step = err * qif / sqrt_n
                    for j in rated:
                        yj[j, f] += lr * (step - reg * yj[j, f])


_COMPILED: dict = {}


def _compiled(func):
    if func.__name__ not in _COMPILED:
        import numba

        _COMPILED[func.__name__] = numba.njit(cache=True, nogil=True)(func)
    return _COMPILED[func.__name__]


def fit_sgd(user_keys, item_keys, ratings, algorithm: str, n_factors: int, n_epochs: int,
            lr: float, reg: float, seed: int | None) -> Factors:
    """Fit biased SVD (``svd``) or SVD++ (``svdpp``) on (user, item, rating) triples.

    Args:
        user_keys: one user id per rating.
        item_keys: one item id per rating.
        ratings: the ratings.
        algorithm: ``svd`` or ``svdpp``.
        n_factors: latent dimensions.
        n_epochs: SGD passes over all ratings.
        lr: learning rate of biases and factors (Surprise's ``lr_all``).
        reg: L2 regularisation (``reg_all``).
        seed: seed of the factor initialisation (normal, mean 0, sd 0.1).
    """
    u, users = pd.factorize(np.asarray(user_keys))
    i, items = pd.factorize(np.asarray(item_keys))
    order = np.argsort(u, kind="stable")  # user by user, each user's ratings in data order
    u, i = u[order].astype(np.int64), i[order].astype(np.int64)
    r = np.asarray(ratings, dtype=np.float64)[order]
    mu = float(np.mean(r))
    rng = np.random.RandomState(seed)
    pu = rng.normal(0.0, 0.1, size=(len(users), n_factors))
    qi = rng.normal(0.0, 0.1, size=(len(items), n_factors))
    bu, bi = np.zeros(len(users)), np.zeros(len(items))
    if algorithm not in ("svd", "svdpp"):
        raise ValueError(f"fit_sgd: unknown algorithm {algorithm!r} (svd, svdpp)")
    plus = algorithm == "svdpp"
    yj = rng.normal(0.0, 0.1, size=(len(items), n_factors)) if plus else np.zeros((0, n_factors))
    # Row ``start[u]`` is the first of user ``u``'s ratings (they are sorted by user).
    start = np.concatenate([[0], np.cumsum(np.bincount(u, minlength=len(users)))])
    _compiled(_epochs)(u, i, r, start, mu, bu, bi, pu, qi, yj, n_epochs, lr, reg, plus)
    if plus:  # the effective user vectors: p_u + |N(u)|^-1/2 sum_j y_j
        sums = np.zeros_like(pu)
        np.add.at(sums, u, yj[i])
        pu = pu + sums / np.sqrt(np.diff(start))[:, None]
    return Factors(np.asarray(users), np.asarray(items), mu, bu, bi, pu, qi)
