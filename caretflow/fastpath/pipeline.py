"""A logged pipeline with its final estimator replaced by a verified fast form.

The pipeline's own transforms run as they are (they are already column-wise numpy), minus
scikit-learn's ``set_output`` wrapper where it would hand their output back unchanged; the
final estimator answers through its fast form (``caretflow.fastpath.members``). The whole model
is used only after it reproduced the pipeline's own output, threshold, calibration and
interval included, on probe rows of every size that takes another code path; otherwise the
model's ``predict_details`` serves as logged.
"""

from __future__ import annotations

import copy
import functools
import logging

import numpy as np
from sklearn.utils._set_output import _get_output_config, _wrap_method_output

from caretflow.fastpath.forest import LEVELWISE_MAX_ROWS, PARALLEL_MIN_ROWS, chunks, pool
from caretflow.fastpath.members import ATOL, RTOL, checked, describe, is_classifier, reproduces

log = logging.getLogger(__name__)
PROBE_ROWS = 2 * PARALLEL_MIN_ROWS + 1  # enough to take every multi-threaded path
_SET_OUTPUT_CODE = _wrap_method_output(len, "transform").__code__  # of every such wrapper


def plain_transform(step):
    """``step.transform``, without scikit-learn's ``set_output`` wrapper when it is a no-op.

    The wrapper reads the output configuration on every call and, when the step's
    configuration (its own ``set_output``, else the process's) is the default one, returns
    the method's own output. Then the method itself is returned; otherwise, or for a method
    without the wrapper, ``step.transform``.
    """
    method = getattr(type(step), "transform", None)
    if (getattr(method, "__code__", None) is not _SET_OUTPUT_CODE
            or _get_output_config("transform", step)["dense"] != "default"):
        return step.transform
    return functools.partial(method.__wrapped__, step)


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


class RowChunks:
    """A row-wise form answering a large batch in row chunks on several threads.

    Args:
        form: the single-threaded fast form (it releases the GIL while it works).
        threads: cores one batch of ``PARALLEL_MIN_ROWS`` rows or more may use.
    """

    def __init__(self, form, threads: int = 1):
        self.form, self.threads = form, max(1, int(threads))

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        """The form's answer on ``Z``, chunk by chunk, in row order."""
        parts = chunks(len(Z), self.threads)
        if len(parts) == 1:
            return self.form(Z)
        return np.concatenate(list(pool(self.threads).map(lambda c: self.form(Z[c]), parts)))


class FastPipeline:
    """Stands in for a fitted pipeline: same answers, less overhead.

    Args:
        pipeline: the fitted (imblearn) pipeline.
        threads: cores one large batch may use (``PREDICT_THREADS``).
        probe: valid input columns the final estimator's fast form must reproduce it on.

    Raises:
        TypeError: the final estimator has no fast form, or it does not reproduce it.
    """

    def __init__(self, pipeline, threads: int, probe: dict):
        self.pipeline = pipeline
        steps = list(pipeline.steps)
        final = steps[-1][1]
        # Resamplers (SMOTE) only act during fit; everything else with transform() runs.
        self.transforms = [plain_transform(s) for _, s in steps[:-1] if hasattr(s, "transform")]
        self.n_features = getattr(final, "n_features_in_", None)
        self.classifier = is_classifier(final)
        Z = self._features(probe)
        if Z is None:
            raise TypeError("the probe rows give no usable feature matrix")
        form = checked(final, Z)
        if getattr(form, "__self__", None) is final:
            raise TypeError(f"no fast form for {type(final).__name__}")
        self.kind = describe(form)
        self.form = RowChunks(form, threads)
        if not reproduces(self.form, final, Z):  # the row chunks too
            raise TypeError(f"the fast form of {type(final).__name__} disagrees with it")

    def _features(self, X) -> np.ndarray | None:
        for transform in self.transforms:
            X = transform(X)
        X = np.asarray(X, dtype=float)
        ok = (X.ndim == 2 and self.n_features in (None, X.shape[1])
              and np.isfinite(X).all())
        return X if ok else None  # anything unusual: the pipeline decides

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, like the pipeline's."""
        Z = self._features(X) if self.classifier else None
        return self.pipeline.predict_proba(X) if Z is None else self.form(Z)

    def predict(self, X) -> np.ndarray:
        """Regression values, like the pipeline's (classification is not used by the model)."""
        Z = None if self.classifier else self._features(X)
        return self.pipeline.predict(X) if Z is None else self.form(Z)


def accelerate(model, threads: int = 1):
    """A copy of ``model`` using ``FastPipeline`` when it reproduces the pipeline exactly.

    Every evaluation strategy is checked: one row, a few, a batch, and a batch large
    enough to be split across ``threads``.

    Args:
        model: the loaded ``CaretflowModel``.
        threads: cores one large batch may use.

    Returns:
        The faster copy, or ``model`` itself when no verified shortcut applies.
    """
    try:
        fast = copy.copy(model)
        probe = probe_columns(model.input_schema, n=PROBE_ROWS, seed=1)
        fast.pipeline = FastPipeline(model.pipeline, threads, probe)
        sizes = (1, 3, 4 * LEVELWISE_MAX_ROWS, PROBE_ROWS)
        probes = [probe_columns(model.input_schema, n=n, seed=n) for n in sizes]
        same = all(np.allclose(want, got, rtol=RTOL, atol=ATOL)
                   for X in probes
                   for want, got in zip(model.predict_details(X).values(),
                                        fast.predict_details(X).values(), strict=True))
    except Exception as exc:  # noqa: BLE001 - any surprise: serve the plain pipeline
        log.debug("no fast path for this model (%s)", exc)
        return model
    if same:
        log.info("fast path for %s: %s", getattr(model, "version_name", "model"),
                 fast.pipeline.kind)
        return fast
    log.warning("fast path disagrees with the pipeline; serving the pipeline as logged")
    return model
