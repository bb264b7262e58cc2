"""The fastest correct path through a logged pipeline for small requests.

A scikit-learn forest answers one row in ~8 ms mostly in per-tree Python overhead
(joblib dispatch and input checks). The trees' own ``tree_.predict`` gives the same
numbers in a fraction of that. The shortcut is used only after it reproduced the
pipeline's own output on probe rows; otherwise the model's ``predict_details`` serves.
"""

from __future__ import annotations

import copy
import logging

import numpy as np

log = logging.getLogger(__name__)
FOREST_CLASSES = {"RandomForestClassifier", "ExtraTreesClassifier"}
FOREST_REGRESSORS = {"RandomForestRegressor", "ExtraTreesRegressor"}
SMALL = 64  # rows at or below this use the shortcut; bigger batches vectorise well anyway


def probe_columns(schema: dict, n: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """Random valid rows drawn from the input schema (for checks and warm-up)."""
    rng = np.random.default_rng(seed)
    out = {}
    for col, spec in schema.items():
        if spec["type"] == "category":
            out[col] = rng.choice(np.asarray(spec["categories"], dtype=str), n)
        else:
            low, high = float(spec.get("min", 0)), float(spec.get("max", 1))
            high = min(high, low + 1e6)
            values = rng.uniform(low, high, n)
            out[col] = np.round(values).astype(int) if spec["type"] == "int" else values
    return out


def _leaf_values(forest, classifier: bool) -> list[np.ndarray]:
    """Per tree, the answer of each node (class shares, or the regression value)."""
    out = []
    for tree in forest.estimators_:
        value = tree.tree_.value[:, 0, :]
        if classifier:
            sums = value.sum(axis=1, keepdims=True)
            value = value / np.where(sums > 0, sums, 1.0)
        else:
            value = value[:, 0]
        out.append(np.ascontiguousarray(value, dtype=float))
    return out


def _forest_mean(trees, values, Z: np.ndarray) -> np.ndarray:
    Z32 = np.ascontiguousarray(Z, dtype=np.float32)
    total = values[0][trees[0].apply(Z32)].copy()
    for tree, value in zip(trees[1:], values[1:], strict=True):
        total += value[tree.apply(Z32)]
    return total / len(trees)


class FastPipeline:
    """Stands in for a fitted pipeline ending in a forest: same answers, less overhead.

    Args:
        pipeline: the fitted (imblearn) pipeline.
    """

    def __init__(self, pipeline):
        self.pipeline = pipeline
        steps = list(pipeline.steps)
        self.final = steps[-1][1]
        kind = type(self.final).__name__
        if kind not in FOREST_CLASSES | FOREST_REGRESSORS or self.final.n_outputs_ != 1:
            raise TypeError(f"no shortcut for {kind}")
        # Resamplers (SMOTE) only act during fit; everything else with transform() runs.
        self.transforms = [s for _, s in steps[:-1] if hasattr(s, "transform")]
        self.classifier = kind in FOREST_CLASSES
        self.trees = [t.tree_ for t in self.final.estimators_]
        self.values = _leaf_values(self.final, self.classifier)

    def _features(self, X) -> np.ndarray:
        for step in self.transforms:
            X = step.transform(X)
        return np.asarray(X, dtype=float)

    @staticmethod
    def _rows(X) -> int:
        return len(next(iter(X.values()))) if isinstance(X, dict) else len(X)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, like the pipeline's."""
        if self._rows(X) > SMALL:
            return self.pipeline.predict_proba(X)
        return _forest_mean(self.trees, self.values, self._features(X))

    def predict(self, X) -> np.ndarray:
        """Regression values, like the pipeline's (classification is not used by the model)."""
        if self._rows(X) > SMALL or self.classifier:
            return self.pipeline.predict(X)
        return _forest_mean(self.trees, self.values, self._features(X))


def accelerate(model):
    """A copy of ``model`` using ``FastPipeline`` when it reproduces the pipeline exactly.

    Args:
        model: the loaded ``CaretflowModel``.

    Returns:
        The faster copy, or ``model`` itself when no verified shortcut applies.
    """
    try:
        fast = copy.copy(model)
        fast.pipeline = FastPipeline(model.pipeline)
        X = probe_columns(model.input_schema)
        expected, got = model.predict_details(X), fast.predict_details(X)
    except Exception as exc:  # noqa: BLE001 - any surprise: serve the plain pipeline
        log.debug("no fast path for this model (%s)", exc)
        return model
    if all(np.allclose(expected[k], got[k], rtol=1e-9, atol=1e-12) for k in expected):
        return fast
    log.warning("fast path disagrees with the pipeline; serving the pipeline as logged")
    return model
