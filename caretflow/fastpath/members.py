"""Fast forms of a pipeline's final estimator, each answering exactly as the estimator does.

Every form takes the already-transformed feature matrix (float64 numpy) and answers what
the estimator's ``predict_proba`` (classifiers) or ``predict`` (regressors) answers:

* random / extra-trees forests: the compiled forest (``caretflow.fastpath.forest``);
* XGBoost: its trees walked by the compiled loop (``caretflow.fastpath.trees``), else
  ``Booster.inplace_predict`` on the numpy matrix (no DMatrix, no wrapper checks);
* LightGBM: its trees walked by the compiled loop (``caretflow.fastpath.trees``), else
  ``Booster.predict`` on the numpy matrix with the wrapper's own predict params;
* linear models: one dot product (plus the logistic map for a binary classifier);
* scikit-learn gradient boosting: its trees walked by the compiled loop, else its own
  stages on the float32 matrix; both from the constant start its ``init_`` estimator
  answers (no input validation per call);
* soft-voting blends: each member through its own form, averaged with the blend's weights
  exactly as the blend averages them.

A form is only used after it reproduced the estimator on probe rows (``checked``);
otherwise the estimator's own method answers, so a surprise costs speed, never accuracy.
Every form answers row by row independently and releases the GIL in its heavy part, so a
large batch can be split into row chunks on several threads (``caretflow.fastpath.pipeline``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from scipy.special import expit

from caretflow.fastpath.forest import FOREST_CLASSES, FOREST_REGRESSORS, CompiledForest
from caretflow.fastpath.trees import (
    GradientBoostingTrees,
    LightGBMTrees,
    XGBoostTrees,
    two_columns,
)

log = logging.getLogger(__name__)
Form = Callable[[np.ndarray], np.ndarray]
LINEAR_REGRESSORS = {"LinearRegression", "Ridge", "Lasso", "ElasticNet", "BayesianRidge",
                     "Lars", "LassoLars", "HuberRegressor", "OrthogonalMatchingPursuit"}
LINEAR_CLASSIFIERS = {"LogisticRegression", "LinearDiscriminantAnalysis"}
BOOSTED = {"GradientBoostingClassifier", "GradientBoostingRegressor"}
RTOL, ATOL = 1e-9, 1e-12  # what "reproduced" means for every form


def is_classifier(est) -> bool:
    """The estimator answers ``predict_proba`` (a classifier) rather than ``predict``."""
    return getattr(est, "_estimator_type", None) == "classifier"


def own_method(est) -> Form:
    """The estimator's own answer: ``predict_proba`` for a classifier, else ``predict``."""
    return est.predict_proba if is_classifier(est) else est.predict


class XGBoostInplace:
    """An XGBoost model answered by ``Booster.inplace_predict`` on a numpy matrix.

    Args:
        est: fitted ``XGBClassifier`` / ``XGBRegressor`` (tree booster).
    """

    def __init__(self, est):
        if getattr(est, "booster", None) == "gblinear" or est.objective == "multi:softmax":
            raise TypeError("no inplace form for gblinear or multi:softmax")
        self.classifier = is_classifier(est)
        self.n_classes = getattr(est, "n_classes_", 0)
        self.booster = est.get_booster()
        self.missing = est.missing
        best = getattr(est, "best_iteration", None)
        self.iterations = (0, 0) if best is None else (0, best + 1)

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        """``predict_proba`` / ``predict`` of the model on the feature matrix ``Z``."""
        out = self.booster.inplace_predict(Z, iteration_range=self.iterations,
                                           missing=self.missing, validate_features=False)
        if not self.classifier or (out.ndim == 2 and out.shape[1] >= self.n_classes):
            return out
        return two_columns(out)


class LightGBMBooster:
    """A LightGBM model answered by its booster on a numpy matrix.

    The booster gets the predict parameters the scikit-learn wrapper would pass (thread
    count included), computed once instead of per call.
    """

    def __init__(self, est):
        from lightgbm.sklearn import _choose_param_value

        if callable(getattr(est, "_objective", None)):
            raise TypeError("custom objective: the wrapper answers raw scores")
        self.classifier = is_classifier(est)
        self.multiclass = self.classifier and est.n_classes_ > 2
        self.booster = est.booster_
        params = _choose_param_value("num_threads", est._process_params(stage="predict"),
                                     est.n_jobs)
        params["num_threads"] = est._process_n_jobs(params["num_threads"])
        self.params = params

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        """``predict_proba`` / ``predict`` of the model on the feature matrix ``Z``."""
        out = self.booster.predict(Z, **self.params)
        return two_columns(out) if self.classifier and not self.multiclass else out


class Linear:
    """A fitted linear model as one dot product (binary classifiers: the logistic map)."""

    def __init__(self, est):
        self.classifier = is_classifier(est)
        coef = np.asarray(est.coef_, dtype=float)
        if self.classifier and coef.shape[0] != 1:
            raise TypeError("only binary linear classifiers have a dot-product form")
        if not self.classifier and coef.ndim != 1:
            raise TypeError("only single-output linear regressors have a dot-product form")
        self.coef = coef.T
        self.intercept = np.asarray(est.intercept_, dtype=float)

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        """``predict_proba`` / ``predict`` of the model on the feature matrix ``Z``."""
        scores = Z @ self.coef + self.intercept
        if not self.classifier:
            return scores
        return two_columns(expit(scores.reshape(-1)))


class GradientBoosting:
    """scikit-learn gradient boosting: its own stages, without per-call input validation.

    The starting raw prediction of ``init_`` does not depend on the row (a dummy estimator),
    so it is computed once; each call adds the stages to it as ``predict_stages`` does.
    """

    def __init__(self, est):
        from sklearn.dummy import DummyClassifier, DummyRegressor
        from sklearn.ensemble._gradient_boosting import predict_stages

        if not isinstance(est.init_, DummyClassifier | DummyRegressor):
            raise TypeError("gradient boosting with a row-dependent init estimator")
        self.est, self.stages = est, predict_stages
        self.classifier = is_classifier(est)
        one = np.zeros((1, est.n_features_in_), dtype=np.float32)
        self.start = est._raw_predict_init(one)[0]  # (k,) raw start, the same for every row

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        """``predict_proba`` / ``predict`` of the model on the feature matrix ``Z``."""
        X = np.ascontiguousarray(Z, dtype=np.float32)
        raw = np.tile(self.start, (len(X), 1))
        self.stages(self.est.estimators_, X, self.est.learning_rate, raw)
        if self.classifier:
            return self.est._loss.predict_proba(raw)
        return raw.ravel()


class Blend:
    """A soft-voting blend whose members each answer through their own fast form.

    Args:
        est: fitted ``VotingClassifier`` (soft) or ``VotingRegressor``.
        probe: a feature matrix each member's form must reproduce the member on.
    """

    def __init__(self, est, probe: np.ndarray):
        if is_classifier(est) and est.voting != "soft":
            raise TypeError("a hard-voting blend has no probabilities")
        self.classifier = is_classifier(est)
        self.members = [checked(m, probe) for m in est.estimators_]
        weights = est.weights
        # The blend's own rule: weights of the members that were not dropped.
        self.weights = None if weights is None else [
            w for (_, member), w in zip(est.estimators, weights, strict=True) if member != "drop"]
        self.compiled = [describe(f) for f in self.members]
        # np.average's own arithmetic, its weights shaped once: sum(w * answer) / sum(w)
        w = None if self.weights is None else np.asarray(self.weights, dtype=float)
        self._w = None if w is None else (w.reshape(-1, *[1] * (2 if self.classifier else 1)),
                                          w.sum())

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        """The blend's ``predict_proba`` / ``predict`` on the feature matrix ``Z``."""
        answers = np.asarray([form(Z) for form in self.members])
        if self._w is None:  # np.average without weights is the mean over the members
            return np.add.reduce(answers, axis=0) / len(answers)
        weights, total = self._w
        return np.multiply(answers, weights).sum(axis=0) / total


def describe(form: Form) -> str:
    """A readable name of a form.

    Its class; ``Estimator.method`` for an estimator's own method; a blend's members in
    brackets.
    """
    owner = getattr(form, "__self__", None)
    if isinstance(owner, CompiledForest):
        return "CompiledForest"
    if owner is not None:
        return f"{type(owner).__name__}.{form.__name__}"
    members = getattr(form, "compiled", None)
    name = type(form).__name__
    return f"{name}[{', '.join(members)}]" if members else name


def _makers(est, probe: np.ndarray) -> list[Callable[[], Form]]:
    """The fast forms an estimator may have, best first (each made only when tried)."""
    kind = type(est).__name__
    if kind in FOREST_CLASSES | FOREST_REGRESSORS:
        return [lambda: CompiledForest(est).mean]
    if kind in {"XGBClassifier", "XGBRegressor"}:
        return [lambda: XGBoostTrees(est), lambda: XGBoostInplace(est)]
    if kind in {"LGBMClassifier", "LGBMRegressor"}:
        return [lambda: LightGBMTrees(est), lambda: LightGBMBooster(est)]
    if kind in LINEAR_REGRESSORS | LINEAR_CLASSIFIERS:
        return [lambda: Linear(est)]
    if kind in BOOSTED:
        return [lambda: GradientBoostingTrees(est, GradientBoosting(est).start),
                lambda: GradientBoosting(est)]
    if kind in {"VotingClassifier", "VotingRegressor"}:
        return [lambda: Blend(est, probe)]
    return []


def reproduces(form: Form, est, probe: np.ndarray) -> bool:
    """``form`` answers as the estimator's own method on ``probe`` and on its first row."""
    want = own_method(est)
    return all(np.allclose(form(Z), want(Z), rtol=RTOL, atol=ATOL) for Z in (probe, probe[:1]))


def checked(est, probe: np.ndarray) -> Form:
    """The best fast form of ``est`` that reproduces it on ``probe``, else its own method.

    A member that cannot be compiled is still answered, by itself.
    """
    reasons = []
    for make in _makers(est, probe):
        try:
            form = make()
            if reproduces(form, est, probe):
                return form
            reasons.append(f"{describe(form)} disagrees")
        except Exception as exc:  # noqa: BLE001 - any surprise: try the next form
            reasons.append(str(exc))
    log.info("%s answers through its own method (%s)", type(est).__name__,
             "; ".join(reasons) or "no fast form")
    return own_method(est)
