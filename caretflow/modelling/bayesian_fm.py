"""Bayesian factorization machine (myFM, Gibbs sampling) with side features and implicit groups.

The design row of a rating is ``[user one-hot | items the user rated, 1/sqrt(n) each | item
one-hot | side features]``: the "what else did this user rate" group makes it SVD++-like,
the side features (age, gender, genres ...) carry the cold-start answer. myFM is fitted with
two relation blocks (user, item), as its authors recommend for recommender data; the kept
posterior samples are copied into numpy arrays (skops-safe) and prediction, the mean over
those samples, runs in numpy without myFM.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import scipy.sparse as sp

from caretflow.modelling.factorization import RawInputRegressor, id_keys, pad


class BayesianFMRegressor(RawInputRegressor):
    """myFM regression FM over user, item, implicit and side-feature groups.

    Side columns constant within a user go to the user block, those constant within an item
    to the item block, the rest (if any) are per-row features. Numeric columns are
    standardised on the training rows; categorical ones are one-hot (an unseen category is
    all zero). Unknown users or items get the side-feature answer: their id and implicit
    groups are empty.

    Args:
        user: user id column (None: from the data set's ``recommender``).
        item: item id column.
        numeric: numeric side columns (None: the data set's ``features.numeric``).
        categorical: categorical side columns (None: the data set's ``features.categorical``).
        implicit: add the group of items each user rated (1/sqrt(n) each).
        rank: latent dimensions.
        n_iter: Gibbs iterations.
        n_kept_samples: last samples kept; the prediction averages over them.
        random_state: sampler seed.
    """

    def __init__(
        self,
        user=None,
        item=None,
        numeric=None,
        categorical=None,
        implicit=True,
        rank=10,
        n_iter=200,
        n_kept_samples=30,
        random_state=0,
    ):
        self.user = user
        self.item = item
        self.numeric = numeric
        self.categorical = categorical
        self.implicit = implicit
        self.rank = rank
        self.n_iter = n_iter
        self.n_kept_samples = n_kept_samples
        self.random_state = random_state

    def _side(self, X) -> np.ndarray:
        """Dense side-feature matrix: standardised numeric columns, then one-hot blocks."""
        n = len(np.asarray(X[self.user]))
        blocks = [np.empty((n, 0))]
        if self.numeric_:
            num = np.column_stack([np.asarray(X[c], dtype=float) for c in self.numeric_])
            blocks.append((num - self.side_mean_) / self.side_scale_)
        for col, cats in self.categories_.items():
            values = np.asarray(X[col]).astype(str)
            blocks.append((values[:, None] == np.asarray(cats)[None, :]).astype(float))
        return np.hstack(blocks)

    def _learn_side(self, X) -> list[int]:
        """Learn scaling and categories; the hyperprior group size of each side column set."""
        self.numeric_ = list(self.numeric or [])
        self.categories_ = {
            c: sorted(set(np.asarray(X[c]).astype(str).tolist())) for c in self.categorical or []
        }
        if self.numeric_:
            num = np.column_stack([np.asarray(X[c], dtype=float) for c in self.numeric_])
            self.side_mean_ = num.mean(axis=0)
            std = num.std(axis=0)
            self.side_scale_ = np.where(std > 0, std, 1.0)
        return [len(self.numeric_)] * bool(self.numeric_) + [
            len(c) for c in self.categories_.values()
        ]

    def _side_blocks(self, X, u_inv, i_inv) -> np.ndarray:
        """Which block (0 row, 1 user, 2 item) each side-feature column belongs to."""
        frame = pd.DataFrame(self._side(X))
        per_user = (frame.groupby(u_inv).nunique() <= 1).all().to_numpy()
        per_item = (frame.groupby(i_inv).nunique() <= 1).all().to_numpy()
        return np.where(per_user, 1, np.where(per_item, 2, 0))

    def fit(self, X, y):
        """Gibbs-sample the FM on the training rows; keep the last ``n_kept_samples``."""
        import myfm

        y = np.asarray(y, dtype=float)
        self.users_, u_inv = np.unique(id_keys(X, self.user), return_inverse=True)
        self.items_, i_inv = np.unique(id_keys(X, self.item), return_inverse=True)
        n_u, n_i = len(self.users_), len(self.items_)
        sizes = self._learn_side(X)
        side = self._side(X)
        block = self._side_blocks(X, u_inv, i_inv)
        first_u = np.unique(u_inv, return_index=True)[1]
        first_i = np.unique(i_inv, return_index=True)[1]
        implicit = _implicit_matrix(u_inv, i_inv, n_u, n_i) if self.implicit else None
        user_data = [sp.identity(n_u, format="csr"), sp.csr_matrix(side[first_u][:, block == 1])]
        user_data += [implicit] if implicit is not None else []
        item_data = [sp.identity(n_i, format="csr"), sp.csr_matrix(side[first_i][:, block == 2])]
        rel = [
            myfm.RelationBlock(u_inv.tolist(), sp.hstack(user_data, format="csr")),
            myfm.RelationBlock(i_inv.tolist(), sp.hstack(item_data, format="csr")),
        ]
        main = sp.csr_matrix(side[:, block == 0])
        # Column order of the FM: main, then the user block, then the item block.
        order = np.concatenate(
            [
                np.flatnonzero(block == 0),
                np.flatnonzero(block == 1),
                np.flatnonzero(block == 2),
            ]
        )
        d_main, d_uside = int((block == 0).sum()), int((block == 1).sum())
        groups = _block_groups(sizes, block)
        shapes = [*groups[0], n_u, *groups[1], *([n_i] if implicit is not None else []), n_i,
                  *groups[2]]
        fm = myfm.MyFMRegressor(rank=self.rank, random_seed=self.random_state)
        with contextlib.redirect_stderr(io.StringIO()):  # myFM's progress bar
            fm.fit(main, y, X_rel=rel, n_iter=self.n_iter, n_kept_samples=self.n_kept_samples,
                   group_shapes=[s for s in shapes if s])
        self._store(fm.predictor_.samples, order, d_main, d_uside, n_u, n_i, implicit)
        return self

    def _store(self, samples, order, d_main, d_uside, n_u, n_i, implicit) -> None:
        """Split every sample's weights into id, implicit and side-feature tables."""
        w0 = np.array([s.w0 for s in samples])
        w = np.stack([np.asarray(s.w) for s in samples], axis=1)  # (d, S)
        V = np.stack([np.asarray(s.V) for s in samples], axis=1)  # (d, S, k)
        start_u = d_main
        uid = slice(start_u, start_u + n_u)
        uside = slice(uid.stop, uid.stop + d_uside)
        imp = slice(uside.stop, uside.stop + (n_i if implicit is not None else 0))
        iid = slice(imp.stop, imp.stop + n_i)
        iside = slice(iid.stop, w.shape[0])
        side_rows = np.r_[np.arange(d_main), np.arange(uside.start, uside.stop),
                          np.arange(iside.start, iside.stop)]
        back = np.empty(len(order), dtype=int)
        back[order] = np.arange(len(order))  # side column -> its FM row among side_rows
        f32 = np.float32
        self.w0_ = w0
        self.user_w_, self.user_V_ = pad(w[uid]).astype(f32), pad(V[uid]).astype(f32)
        self.item_w_, self.item_V_ = pad(w[iid]).astype(f32), pad(V[iid]).astype(f32)
        self.side_w_ = w[side_rows][back].astype(f32)
        self.side_V_ = V[side_rows][back].astype(f32)
        k, S = V.shape[2], V.shape[1]
        self.implicit_w_ = np.zeros((n_u + 1, S), dtype=f32)
        self.implicit_V_ = np.zeros((n_u + 1, S, k), dtype=f32)
        self.implicit_sq_ = np.zeros((n_u + 1, S), dtype=f32)
        if implicit is not None:
            self.implicit_w_[:n_u] = implicit @ w[imp]
            self.implicit_V_[:n_u] = (implicit @ V[imp].reshape(n_i, -1)).reshape(n_u, S, k)
            self.implicit_sq_[:n_u] = implicit.power(2) @ (V[imp] ** 2).sum(axis=2)

    def predict(self, X) -> np.ndarray:
        """Posterior mean prediction over the kept samples (unclipped)."""
        u, i = self._ids(X)
        side = self._side(X).astype(np.float32)
        lin = (
            self.w0_[None, :]
            + self.user_w_[u] + self.implicit_w_[u] + self.item_w_[i] + side @ self.side_w_
        )
        z = (
            self.user_V_[u] + self.implicit_V_[u] + self.item_V_[i]
            + np.einsum("nd,dsk->nsk", side, self.side_V_)
        )
        sq = (
            (self.user_V_[u] ** 2).sum(axis=2) + self.implicit_sq_[u]
            + (self.item_V_[i] ** 2).sum(axis=2)
            + (side**2) @ (self.side_V_**2).sum(axis=2)
        )
        per_sample = lin + 0.5 * ((z**2).sum(axis=2) - sq)
        return per_sample.mean(axis=1).astype(float)


def _implicit_matrix(u_inv, i_inv, n_u: int, n_i: int) -> sp.csr_matrix:
    """Users x items, 1/sqrt(n_u) where the user rated the item in training."""
    m = sp.csr_matrix((np.ones(len(u_inv)), (u_inv, i_inv)), shape=(n_u, n_i))
    m.data[:] = 1.0
    counts = np.diff(m.indptr)
    return sp.diags(1.0 / np.sqrt(np.maximum(counts, 1))) @ m


def _block_groups(sizes: list[int], block: np.ndarray) -> list[list[int]]:
    """Hyperprior group sizes of the side columns in each block (row, user, item).

    A side column set (the numeric columns, or one categorical's one-hot) split over blocks
    becomes one group per block, in column order.
    """
    gid = np.repeat(np.arange(len(sizes)), sizes)
    out = []
    for b in (0, 1, 2):
        ids = gid[block == b]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else []
        out.append(np.diff(np.r_[starts, len(ids)]).astype(int).tolist() if len(ids) else [])
    return out
