"""Latent-factor predictions as a feature for the other model families, out-of-fold.

``FactorPredictionEncoder`` adds ``lf_pred``, the rating a latent-factor model
(``caretflow.modelling.factorization.LatentFactorRegressor``) predicts for the row's user and
item. Like the target statistics (``caretflow.features.encoders``), ``fit_transform`` encodes
each training row from a model fitted on the other folds, so a tree or linear model on top
never sees a row's own target through it; ``transform`` uses the model fitted on all rows.
"""

from __future__ import annotations

import numpy as np

from caretflow.features.encoders import OutOfFoldEncoder
from caretflow.modelling.factorization import LatentFactorRegressor


class FactorPredictionEncoder(OutOfFoldEncoder):
    """Out-of-fold latent-factor rating prediction (``lf_pred``) per (user, item) row.

    Args:
        user: user id column.
        item: item id column.
        algorithm: ``baseline``, ``svd`` or ``svdpp`` (``LatentFactorRegressor``).
        n_factors: latent dimensions.
        n_epochs: SGD passes.
        lr_all: SGD learning rate.
        reg_all: L2 regularisation.
        n_splits: out-of-fold folds.
        random_state: seed of the folds and of the factor initialisation.
    """

    OUTPUT = ("lf_pred",)

    def __init__(
        self,
        user="user_id",
        item="item_id",
        algorithm="svd",
        n_factors=20,
        n_epochs=20,
        lr_all=0.007,
        reg_all=0.02,
        n_splits=5,
        random_state=0,
    ):
        super().__init__(n_splits=n_splits, random_state=random_state)
        self.user = user
        self.item = item
        self.algorithm = algorithm
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr_all = lr_all
        self.reg_all = reg_all

    @classmethod
    def output_names(cls) -> list[str]:
        """Names of the columns this encoder adds."""
        return list(cls.OUTPUT)

    def _learn(self, X, y) -> LatentFactorRegressor:
        model = LatentFactorRegressor(
            user=self.user,
            item=self.item,
            algorithm=self.algorithm,
            n_factors=self.n_factors,
            n_epochs=self.n_epochs,
            lr_all=self.lr_all,
            reg_all=self.reg_all,
            random_state=self.random_state,
        )
        return model.fit(X, y)

    def _encode(self, X, state: LatentFactorRegressor) -> dict[str, np.ndarray]:
        return {"lf_pred": state.predict(X)}
