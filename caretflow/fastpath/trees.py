"""Boosted trees walked by the compiled forest loop: scikit-learn gradient boosting, LightGBM.

Both libraries spend most of a small call outside the trees (input checks, a predictor set
up per call, per-row feature copies). Here the trees are packed once into the flat arrays
``caretflow.fastpath.forest`` walks with numba, and the answer is built as each library builds
it, so it is the library's own:

* scikit-learn gradient boosting: float32 features against float64 thresholds (exactly as
  ``exact_float32`` thresholds), each stage adding ``learning_rate * value`` of its leaf to
  the constant start of the dummy ``init_`` estimator, in stage order; then the loss's link;
* LightGBM (numerical ``<=`` splits, no zero-as-missing, no linear trees): float64 features
  against float64 thresholds, leaf values added in tree order from zero (the booster holds
  the initial score in its first tree); then the sigmoid of a binary objective.

Without numba there is no such form (the booster or stage forms in ``members`` serve).
"""

from __future__ import annotations

import numpy as np

from caretflow.fastpath.forest import compiled_walk, exact_float32


class TreeSum:
    """Trees packed for the compiled walk: the sum of their leaf values per row.

    Args:
        trees: per tree ``(feature, threshold, left, right, value, depth)``, node-local
            indices, a leaf where ``left < 0``.
        dtype: the feature and threshold type the library compares in.
        start: the raw value every row starts from.
    """

    def __init__(self, trees: list[tuple], dtype, start: float = 0.0):
        if compiled_walk() is None or not trees:
            raise TypeError("no compiled walk (numba missing) or no trees")
        sizes = np.array([len(t[0]) for t in trees])
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        feature, threshold, children, values = [], [], [], []
        for (feat, thr, left, right, value, _), root in zip(trees, roots, strict=True):
            own = np.arange(len(feat)) + root
            leaf = np.asarray(left) < 0
            feature.append(np.where(leaf, 0, feat))
            threshold.append(np.where(leaf, np.inf, thr))
            pairs = np.stack([np.where(leaf, own, np.asarray(left) + root),
                              np.where(leaf, own, np.asarray(right) + root)], axis=1)
            children.append(pairs.ravel())
            values.append(np.asarray(value, dtype=np.float64))
        self.dtype, self.start = dtype, float(start)
        self.packed = (np.concatenate(feature).astype(np.intp),
                       np.concatenate(threshold).astype(dtype),
                       np.concatenate(children).astype(np.intp), roots,
                       np.array([t[5] for t in trees], dtype=np.intp),
                       np.ascontiguousarray(np.concatenate(values)[:, None]))

    def raw(self, Z: np.ndarray) -> np.ndarray:
        """(rows, 1) raw sums: ``start`` plus every tree's leaf value, in tree order."""
        X = np.ascontiguousarray(Z, dtype=self.dtype)
        out = np.full((len(X), 1), self.start)
        compiled_walk()(X, *self.packed, out)
        return out


class GradientBoostingTrees:
    """scikit-learn ``GradientBoosting*`` (one tree per stage) through ``TreeSum``."""

    def __init__(self, est, start: np.ndarray):
        if est.estimators_.shape[1] != 1 or len(start) != 1:
            raise TypeError("multi-class gradient boosting")
        trees = []
        for stage in est.estimators_[:, 0]:
            t = stage.tree_
            trees.append((t.feature, exact_float32(t.threshold), t.children_left,
                          t.children_right, est.learning_rate * t.value[:, 0, 0], t.max_depth))
        self.sum = TreeSum(trees, np.float32, start[0])
        self.est = est
        self.classifier = getattr(est, "_estimator_type", None) == "classifier"

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        """``predict_proba`` / ``predict`` of the model on the feature matrix ``Z``."""
        raw = self.sum.raw(Z)
        return self.est._loss.predict_proba(raw) if self.classifier else raw.ravel()


def _flatten(node: dict, out: list, depth: int = 0) -> tuple[int, int]:
    """Append ``node`` and its subtree (pre-order) to ``out``; its index and subtree depth."""
    index = len(out)
    if "leaf_value" in node:
        if node.get("leaf_coeff"):
            raise TypeError("LightGBM linear trees have no compiled form")
        out.append((0, 0.0, -1, -1, float(node["leaf_value"])))
        return index, depth
    if node["decision_type"] != "<=" or node["missing_type"] == "Zero":
        raise TypeError(f"LightGBM split {node['decision_type']} / missing "
                        f"{node['missing_type']} has no compiled form")
    out.append(None)
    left, dl = _flatten(node["left_child"], out, depth + 1)
    right, dr = _flatten(node["right_child"], out, depth + 1)
    out[index] = (int(node["split_feature"]), float(node["threshold"]), left, right, 0.0)
    return index, max(dl, dr)


class LightGBMTrees:
    """A binary or regression LightGBM model through ``TreeSum`` (its booster's own trees)."""

    def __init__(self, est):
        model = est.booster_.dump_model()
        objective = model["objective"].split()
        if model["num_tree_per_iteration"] != 1 or model.get("average_output"):
            raise TypeError("multi-class or random-forest LightGBM")
        if objective[0] not in {"binary", "regression"}:
            raise TypeError(f"LightGBM objective {objective[0]} has no compiled form")
        self.classifier = objective[0] == "binary"
        self.sigmoid = float(objective[1].split(":")[1]) if self.classifier else 1.0
        best = est.booster_.best_iteration
        infos = model["tree_info"][:best] if best and best > 0 else model["tree_info"]
        trees = []
        for info in infos:
            nodes: list = []
            _, depth = _flatten(info["tree_structure"], nodes)
            feat, thr, left, right, value = (np.array(c) for c in zip(*nodes, strict=True))
            trees.append((feat, thr, left, right, value, depth))
        self.sum = TreeSum(trees, np.float64)

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        """``predict_proba`` / ``predict`` of the model on the feature matrix ``Z``."""
        raw = self.sum.raw(Z)[:, 0]
        if not self.classifier:
            return raw
        p1 = 1.0 / (1.0 + np.exp(-self.sigmoid * raw))
        return np.vstack((1.0 - p1, p1)).transpose()
