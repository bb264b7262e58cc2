"""The fastest correct path through a logged pipeline ending in a random forest.

A scikit-learn forest spends most of a small request in per-tree Python overhead (joblib
dispatch and input checks): ~8 ms for one row of a 200-tree forest. ``CompiledForest``
packs every tree's nodes into flat arrays and answers from them directly:

* with numba (installed with PyCaret): one compiled loop over rows and trees, ~1 µs per
  row and 100 trees;
* without it: few rows walk all trees together, one vectorised numpy step per tree level;
  many rows take one call per tree into scikit-learn's own compiled ``Tree.apply``.

All make exactly the comparisons scikit-learn makes (float32 features against float64
thresholds) and add the per-tree answers in tree order, so the result is the pipeline's.
The shortcut is used only after it reproduced the pipeline's own output on probe rows;
otherwise the model's ``predict_details`` serves.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

log = logging.getLogger(__name__)
FOREST_CLASSES = {"RandomForestClassifier", "ExtraTreesClassifier"}
FOREST_REGRESSORS = {"RandomForestRegressor", "ExtraTreesRegressor"}
LEVELWISE_MAX_ROWS = 16  # up to this many rows all trees walk together; above, tree by tree


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


def _walk(X, feature, threshold, children, roots, depths, values, out):  # pragma: no cover
    """Add every tree's leaf value to ``out`` per row, in tree order (scikit-learn's order).

    Tree by tree, so one tree's nodes stay in cache, and a block of rows at a time in
    branch-free steps (a leaf points at itself), so the CPU overlaps the rows' node chains.
    """
    n, block = X.shape[0], 64
    nodes = np.empty(block, dtype=children.dtype)
    for t in range(roots.shape[0]):
        for start in range(0, n, block):
            size = min(block, n - start)
            nodes[:size] = roots[t]
            for _ in range(depths[t]):
                for b in range(size):
                    node = nodes[b]
                    nodes[b] = children[2 * node + (X[start + b, feature[node]] > threshold[node])]
            for b in range(size):
                for j in range(values.shape[1]):
                    out[start + b, j] += values[nodes[b], j]


def exact_float32(threshold: np.ndarray) -> np.ndarray:
    """float32 thresholds that split every float32 input exactly as the float64 ones.

    For float32 ``x``: ``x > t`` holds iff ``x > t32`` when ``t32`` is the largest float32
    not above ``t`` (infinite thresholds stay infinite).
    """
    t32 = threshold.astype(np.float32)
    above = t32.astype(np.float64) > threshold
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


@functools.lru_cache(maxsize=1)
def compiled_walk():
    """``_walk`` compiled by numba (cached on disk when possible), or None without numba."""
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(cache=True, nogil=True)(_walk)


def _node_values(tree, classifier: bool) -> np.ndarray:
    """The answer of each node: class shares (as ``predict_proba``) or the regression value."""
    value = tree.value[:, 0, :]
    if classifier:
        sums = value.sum(axis=1, keepdims=True)
        return value / np.where(sums > 0, sums, 1.0)
    return value[:, :1]


class CompiledForest:
    """A fitted forest's trees as flat arrays.

    Args:
        forest: fitted ``RandomForest*`` / ``ExtraTrees*`` with one output.
    """

    def __init__(self, forest, threads: int = 1):
        kind = type(forest).__name__
        if kind not in FOREST_CLASSES | FOREST_REGRESSORS or forest.n_outputs_ != 1:
            raise TypeError(f"no compiled form for {kind}")
        self.classifier = kind in FOREST_CLASSES
        self.trees = [est.tree_ for est in forest.estimators_]
        sizes = np.array([t.node_count for t in self.trees])
        self.roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        self.depths = np.array([t.max_depth for t in self.trees], dtype=np.intp)
        self.depth = int(self.depths.max())
        self.n_features = forest.n_features_in_
        feature, threshold, children, values = [], [], [], []
        for tree, root in zip(self.trees, self.roots, strict=True):
            own = np.arange(tree.node_count) + root
            leaf = tree.children_left < 0
            feature.append(np.where(leaf, 0, tree.feature))
            threshold.append(np.where(leaf, np.inf, tree.threshold))
            # children[2 * node + go_right]; a leaf points at itself both ways.
            pairs = np.stack([np.where(leaf, own, tree.children_left + root),
                              np.where(leaf, own, tree.children_right + root)], axis=1)
            children.append(pairs.ravel())
            values.append(_node_values(tree, self.classifier))
        self.feature = np.concatenate(feature).astype(np.intp)
        self.threshold = np.concatenate(threshold).astype(np.float64)
        self.children = np.concatenate(children).astype(np.intp)
        self.values = np.ascontiguousarray(np.concatenate(values), dtype=np.float64)
        # The compiled walk's compact copies (half the bytes per node, same comparisons).
        index = np.int32 if len(self.children) < 2**31 else np.intp
        self.packed = (self.feature.astype(index), exact_float32(self.threshold),
                       self.children.astype(index), self.roots.astype(index),
                       self.depths.astype(index), self.values)
        self.threads = max(1, int(threads))

    def _levelwise(self, X32: np.ndarray) -> np.ndarray:
        """(rows, trees) global leaf ids, every tree one level per step."""
        X = X32.astype(np.float64)
        node = np.broadcast_to(self.roots, (len(X), len(self.roots))).copy()
        rows = np.arange(len(X))[:, None]
        for _ in range(self.depth):
            right = X[rows, self.feature[node]] > self.threshold[node]
            node = self.children[2 * node + right]
        return node

    def mean(self, X: np.ndarray) -> np.ndarray:
        """The forest's answer: mean class shares (rows, classes) or mean value (rows,)."""
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        walk = compiled_walk()
        if walk is not None:
            total = np.zeros((len(X32), self.values.shape[1]))
            chunks = _chunks(len(X32), self.threads)
            if len(chunks) == 1:
                walk(X32, *self.packed, total)
            else:  # the compiled walk releases the GIL: row chunks run on several cores
                list(_pool(self.threads).map(
                    lambda c: walk(X32[c], *self.packed, total[c]), chunks))
        elif len(X32) <= LEVELWISE_MAX_ROWS:
            per_tree = self.values[self._levelwise(X32)]  # (rows, trees, k)
            total = np.cumsum(per_tree, axis=1)[:, -1]  # tree order, as scikit-learn adds
        else:
            total = np.zeros((len(X32), self.values.shape[1]))
            for tree, root in zip(self.trees, self.roots, strict=True):
                total += self.values[tree.apply(X32) + root]
        total /= len(self.trees)
        return total if self.classifier else total[:, 0]


PARALLEL_MIN_ROWS = 256  # fewer rows: one thread (a hand-off costs more than it saves)


def _chunks(n: int, threads: int) -> list[slice]:
    parts = min(threads, n // (PARALLEL_MIN_ROWS // 2)) if threads > 1 else 1
    if parts <= 1:
        return [slice(0, n)]
    edges = np.linspace(0, n, parts + 1).astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    """The pool of the calling process (made after a fork: workers never share one)."""
    key = (os.getpid(), threads)
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(threads, thread_name_prefix="forest")
    return _POOLS[key]


class FastPipeline:
    """Stands in for a fitted pipeline ending in a forest: same answers, less overhead.

    Args:
        pipeline: the fitted (imblearn) pipeline.
        threads: cores one large batch may use (``PREDICT_THREADS``).
    """

    def __init__(self, pipeline, threads: int = 1):
        self.pipeline = pipeline
        steps = list(pipeline.steps)
        self.forest = CompiledForest(steps[-1][1], threads)
        # Resamplers (SMOTE) only act during fit; everything else with transform() runs.
        self.transforms = [s for _, s in steps[:-1] if hasattr(s, "transform")]

    def _features(self, X) -> np.ndarray | None:
        for step in self.transforms:
            X = step.transform(X)
        X = np.asarray(X, dtype=float)
        ok = X.ndim == 2 and X.shape[1] == self.forest.n_features and np.isfinite(X).all()
        return X if ok else None  # anything unusual: the pipeline decides

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, like the pipeline's."""
        Z = self._features(X) if self.forest.classifier else None
        return self.pipeline.predict_proba(X) if Z is None else self.forest.mean(Z)

    def predict(self, X) -> np.ndarray:
        """Regression values, like the pipeline's (classification is not used by the model)."""
        Z = None if self.forest.classifier else self._features(X)
        return self.pipeline.predict(X) if Z is None else self.forest.mean(Z)


def accelerate(model, threads: int = 1):
    """A copy of ``model`` using ``FastPipeline`` when it reproduces the pipeline exactly.

    Every evaluation strategy is checked: a few probe rows, a batch, and a batch large
    enough to be split across ``threads``.

    Args:
        model: the loaded ``CaretflowModel``.
        threads: cores one large batch may use.

    Returns:
        The faster copy, or ``model`` itself when no verified shortcut applies.
    """
    try:
        fast = copy.copy(model)
        fast.pipeline = FastPipeline(model.pipeline, threads)
        sizes = (3, 4 * LEVELWISE_MAX_ROWS, 2 * PARALLEL_MIN_ROWS + 1)
        probes = [probe_columns(model.input_schema, n=n, seed=n) for n in sizes]
        same = all(np.allclose(want, got, rtol=1e-9, atol=1e-12)
                   for X in probes
                   for want, got in zip(model.predict_details(X).values(),
                                        fast.predict_details(X).values(), strict=True))
    except Exception as exc:  # noqa: BLE001 - any surprise: serve the plain pipeline
        log.debug("no fast path for this model (%s)", exc)
        return model
    if same:
        return fast
    log.warning("fast path disagrees with the pipeline; serving the pipeline as logged")
    return model
