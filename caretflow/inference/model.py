"""The logged inference model: fitted pipeline + decision threshold or calibrated interval."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from caretflow.inference.calibration import apply as apply_calibration


class CaretflowModel(BaseEstimator):
    """Whole inference pipeline as registered; nothing is refitted at prediction time.

    Args:
        pipeline: fitted (imblearn) pipeline: features -> [resampler] -> estimator.
        task: ``classification`` or ``regression``.
        threshold: probability of class 1 at or above which the label is 1.
        interval_halfwidth: half-width of the regression interval (K-fold out-of-fold
            residual quantile, ``caretflow.metrics.oof_residual_halfwidth``).
        interval_level: nominal coverage of that interval.
        target_range: ``[low, high]`` clip for regression outputs (and intervals).
        input_schema: the data set's input schema (types, ranges, categories).
        reference: training reference per input feature for drift checks.
        version_name: the version config this model was built from.
        catalogue: users, items and priors for top-k recommendation (recommender data).
        contract: what the model expects and answers (``caretflow.inference.contract``).
        calibration: the map applied to the pipeline's probability of class 1
            (``caretflow.inference.calibration``; None: as the pipeline answers).
    """

    def __init__(
        self,
        pipeline=None,
        task="classification",
        threshold=0.5,
        interval_halfwidth=None,
        interval_level=0.9,
        target_range=None,
        input_schema=None,
        reference=None,
        version_name=None,
        catalogue=None,
        contract=None,
        calibration=None,
    ):
        self.pipeline = pipeline
        self.task = task
        self.threshold = threshold
        self.interval_halfwidth = interval_halfwidth
        self.interval_level = interval_level
        self.target_range = target_range
        self.input_schema = input_schema
        self.reference = reference
        self.version_name = version_name
        self.catalogue = catalogue
        self.contract = contract
        self.calibration = calibration

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (classification), calibrated when the model has a calibration."""
        if not self.calibration:
            return self.pipeline.predict_proba(X)
        p1 = self._proba_of_one(X)
        return np.column_stack([1.0 - p1, p1])

    def _proba_of_one(self, X) -> np.ndarray:
        """The (calibrated) probability of class 1: ``predict_proba(X)[:, 1]``."""
        p1 = self.pipeline.predict_proba(X)[:, 1]
        return apply_calibration(self.calibration, p1) if self.calibration else p1

    def _point(self, X) -> np.ndarray:
        pred = np.asarray(self.pipeline.predict(X), dtype=float)
        if self.target_range is not None:
            pred = np.clip(pred, *self.target_range)
        return pred

    def predict(self, X) -> np.ndarray:
        """Labels at the tuned threshold, or clipped regression values."""
        if self.task == "classification":
            return (self._proba_of_one(X) >= self.threshold).astype(int)
        return self._point(X)

    def predict_interval(self, X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point prediction with lower and upper bounds at ``interval_level``."""
        point = self._point(X)
        half = self.interval_halfwidth or 0.0
        lower, upper = point - half, point + half
        if self.target_range is not None:
            lower, upper = np.clip(lower, *self.target_range), np.clip(upper, *self.target_range)
        return point, lower, upper

    def predict_details(self, X) -> dict[str, np.ndarray]:
        """Everything the server answers, from one pass through the pipeline."""
        if self.task == "classification":
            proba = self._proba_of_one(X)
            return {"prediction": (proba >= self.threshold).astype(int), "probability": proba}
        point, lower, upper = self.predict_interval(X)
        return {"prediction": point, "lower": lower, "upper": upper}
