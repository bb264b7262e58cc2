"""A fitted random forest packed into flat arrays and walked without scikit-learn's overhead.

A scikit-learn forest spends most of a small request in per-tree Python overhead (joblib
dispatch and input checks): ~8 ms for one row of a 200-tree forest. ``CompiledForest``
packs every tree's nodes into flat arrays and answers from them directly:

* with numba (installed with PyCaret): one compiled loop over rows and trees, ~1 µs per
  row and 100 trees;
* without it: few rows walk all trees together, one vectorised numpy step per tree level;
  many rows take one call per tree into scikit-learn's own compiled ``Tree.apply``.

All make exactly the comparisons scikit-learn makes (float32 features against float64
thresholds) and add the per-tree answers in tree order, so the result is the forest's.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

FOREST_CLASSES = {"RandomForestClassifier", "ExtraTreesClassifier"}
FOREST_REGRESSORS = {"RandomForestRegressor", "ExtraTreesRegressor"}
LEVELWISE_MAX_ROWS = 16  # up to this many rows all trees walk together; above, tree by tree


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


@functools.cache
def compiled(fn):
    """``fn`` compiled by numba (cached on disk when possible), or None without numba."""
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(cache=True, nogil=True)(fn)


def compiled_walk():
    """``_walk`` compiled by numba, or None without numba."""
    return compiled(_walk)


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
            parts = chunks(len(X32), self.threads)
            if len(parts) == 1:
                walk(X32, *self.packed, total)
            else:  # the compiled walk releases the GIL: row chunks run on several cores
                list(pool(self.threads).map(
                    lambda c: walk(X32[c], *self.packed, total[c]), parts))
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


def chunks(n: int, threads: int) -> list[slice]:
    """Row slices for ``threads`` threads (one slice below ``PARALLEL_MIN_ROWS`` rows)."""
    parts = min(threads, n // (PARALLEL_MIN_ROWS // 2)) if threads > 1 else 1
    if parts <= 1:
        return [slice(0, n)]
    edges = np.linspace(0, n, parts + 1).astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def pool(threads: int) -> ThreadPoolExecutor:
    """The pool of the calling process (made after a fork: workers never share one)."""
    key = (os.getpid(), threads)
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(threads, thread_name_prefix="forest")
    return _POOLS[key]
