"""Boosted trees walked by the compiled forest loop: scikit-learn, LightGBM and XGBoost.

Each library spends most of a small call outside the trees (input checks, a predictor set
up per call, per-row feature copies). Here the trees are packed once into the flat arrays
``caretflow.fastpath.forest`` walks with numba, and the answer is built as each library builds
it, so it is the library's own:

* scikit-learn gradient boosting: float32 features against float64 thresholds (exactly as
  ``exact_float32`` thresholds), each stage adding ``learning_rate * value`` of its leaf to
  the constant start of the dummy ``init_`` estimator, in stage order; then the loss's link;
* LightGBM (numerical ``<=`` splits, no zero-as-missing, no linear trees): float64 features
  against float64 thresholds, leaf values added in tree order from zero (the booster holds
  the initial score in its first tree); then the sigmoid of a binary objective;
* XGBoost (``gbtree``, numerical splits, NaN as its only missing value): float32 features
  going right when ``>=`` the float32 split (``>`` the float32 just below it), float32 leaf
  values added in tree order to the float32 base margin, as its CPU predictor sums them;
  then, for ``binary:logistic``, its float32 sigmoid (compiled, as ``expf`` computes it).

Without numba there is no such form (the booster or stage forms in ``members`` serve).
"""

from __future__ import annotations

import json
import math

import numpy as np

from caretflow.fastpath.forest import compiled, compiled_walk, exact_float32

XGBOOST_IDENTITY = {"reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror"}


def two_columns(p1: np.ndarray) -> np.ndarray:
    """``predict_proba`` of a binary model from its probability of class 1 (its dtype kept)."""
    return np.vstack((1.0 - p1, p1)).transpose()


class TreeSum:
    """Trees packed for the compiled walk: the sum of their leaf values per row.

    Args:
        trees: per tree ``(feature, threshold, left, right, value, depth)``, node-local
            indices, a leaf where ``left < 0``.
        dtype: the feature and threshold type the library compares in.
        start: the raw value every row starts from.
        total: the type leaf values are added in (float32 for XGBoost, as it adds them).
    """

    def __init__(self, trees: list[tuple], dtype, start: float = 0.0, total=np.float64):
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
            values.append(np.asarray(value, dtype=total))
        self.dtype, self.start, self.total = dtype, total(start), total
        self.packed = (np.concatenate(feature).astype(np.intp),
                       np.concatenate(threshold).astype(dtype),
                       np.concatenate(children).astype(np.intp), roots,
                       np.array([t[5] for t in trees], dtype=np.intp),
                       np.ascontiguousarray(np.concatenate(values)[:, None]))

    def raw(self, Z: np.ndarray) -> np.ndarray:
        """(rows, 1) raw sums: ``start`` plus every tree's leaf value, in tree order."""
        X = np.ascontiguousarray(Z, dtype=self.dtype)
        out = np.full((len(X), 1), self.start, dtype=self.total)
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
        return two_columns(1.0 / (1.0 + np.exp(-self.sigmoid * raw)))


def _sigmoid32(margin, out):  # pragma: no cover - compiled by numba
    """XGBoost's float32 sigmoid of each margin (its clamp, ``expf`` and epsilon)."""
    for i in range(margin.shape[0]):
        x = min(-margin[i], np.float32(88.7))
        out[i] = np.float32(1.0) / (np.float32(math.exp(x)) + np.float32(1.0) + np.float32(1e-16))


class XGBoostTrees:
    """A binary-logistic or identity-regression XGBoost model through ``TreeSum``.

    Args:
        est: fitted ``XGBClassifier`` / ``XGBRegressor``.

    Raises:
        TypeError: a booster, objective, split or missing value this form does not cover.
    """

    def __init__(self, est):
        learner = json.loads(est.get_booster().save_raw("json"))["learner"]
        booster, objective = learner["gradient_booster"], learner["objective"]["name"]
        params = learner["learner_model_param"]
        if booster["name"] != "gbtree" or int(params["num_class"]) > 1 or int(
                params.get("num_target", 1)) != 1:
            raise TypeError("XGBoost trees: only single-output gbtree boosters")
        if objective != "binary:logistic" and objective not in XGBOOST_IDENTITY:
            raise TypeError(f"XGBoost objective {objective} has no compiled form")
        if not (est.missing is None or math.isnan(est.missing)):
            raise TypeError("XGBoost with a missing value other than NaN")
        model = booster["model"]
        best = getattr(est, "best_iteration", None)
        end = len(model["trees"])
        if best is not None:  # the trees of the first best + 1 rounds, as predictions use
            if "iteration_indptr" not in model:
                raise TypeError("an XGBoost model that does not say which trees each round made")
            end = int(model["iteration_indptr"][best + 1])
        base = np.float32(float(params["base_score"].strip("[]")))
        self.classifier = objective == "binary:logistic"
        if self.classifier:  # the base margin, as XGBoost turns the base probability into it
            base = -np.log(np.float32(1.0) / base - np.float32(1.0))
        self.sum = TreeSum([_xgboost_tree(t) for t in model["trees"][:end]], np.float32, base,
                           total=np.float32)

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        """``predict_proba`` / ``predict`` of the model on the feature matrix ``Z``."""
        margin = self.sum.raw(Z)[:, 0]
        if not self.classifier:
            return margin
        p1 = np.empty_like(margin)
        compiled(_sigmoid32)(margin, p1)
        return two_columns(p1)


def _xgboost_tree(tree: dict) -> tuple:
    """One tree of XGBoost's JSON model as ``TreeSum`` takes it (``>`` thresholds, depth)."""
    if any(tree["split_type"]) or int(tree["tree_param"].get("num_deleted", 0)):
        raise TypeError("XGBoost categorical splits or deleted nodes have no compiled form")
    left, right = np.asarray(tree["left_children"]), np.asarray(tree["right_children"])
    condition = np.asarray(tree["split_conditions"], dtype=np.float32)
    leaf = left < 0
    inner = np.flatnonzero(~leaf)
    if (left[inner] <= inner).any() or (right[inner] <= inner).any():
        raise TypeError("an XGBoost tree whose children come before their parent")
    # x >= t (XGBoost goes right) is x > the float32 just below t, for every float32 x.
    threshold = np.nextafter(condition, np.float32(-np.inf))
    depth = np.zeros(len(left), dtype=np.intp)
    for node in inner:  # parents first: each child's depth follows from its parent's
        depth[left[node]] = depth[right[node]] = depth[node] + 1
    return (np.asarray(tree["split_indices"]), threshold, left, right,
            np.where(leaf, condition, np.float32(0.0)), int(depth.max()))
