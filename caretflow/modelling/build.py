"""Build, tune and calibrate the inference pipeline for one model version."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from omegaconf import DictConfig
from sklearn.base import clone

from caretflow.config import to_container
from caretflow.drift import training_reference
from caretflow.features.encoders import BaselineBiases, TargetStatsEncoder
from caretflow.features.latent import FactorPredictionEncoder
from caretflow.features.tabular import TabularFeatures
from caretflow.inference import contract
from caretflow.inference.calibration import apply as apply_calibration
from caretflow.inference.calibration import fit as fit_calibration
from caretflow.inference.model import CaretflowModel
from caretflow.inference.ranking import build_catalogue
from caretflow.metrics import (
    best_f1_threshold,
    calibration_metrics,
    classification_metrics,
    oof_residual_halfwidth,
    regression_metrics,
)
from caretflow.modelling.encoded_folds import shared_folds
from caretflow.modelling.factorization import for_dataset
from caretflow.modelling.fold_fits import split_pipeline
from caretflow.modelling.search import cv_splitter, run_search

log = logging.getLogger(__name__)
# How regression intervals are made: the model refitted on all rows +- a quantile of K-fold
# out-of-fold absolute residuals (``caretflow.metrics.oof_residual_halfwidth``), not
# split-conformal.
INTERVAL_METHOD = "kfold_oof_residual_quantile"


@dataclass
class FitResult:
    """A fitted model with what training measured about it."""

    model: CaretflowModel
    cv_metrics: dict[str, float]
    best_params: dict = field(default_factory=dict)
    search_table: pd.DataFrame | None = None
    seconds: float = 0.0


def make_estimator(cfg: DictConfig, task: str):
    """Instantiate the model family's estimator for the task with its params."""
    if cfg.model.estimator is None:
        raise ValueError(f"model {cfg.model.name!r} has no estimator; it selects one (automl)")
    if task not in cfg.model.estimator:
        raise ValueError(f"model {cfg.model.name!r} has no {task} estimator")
    return instantiate(cfg.model.estimator[task], **to_container(cfg.model, "params"))


def id_encoders(cfg: DictConfig) -> tuple[list, list[str]]:
    """The id encoder steps a data set asks for, and the columns they add.

    ``features.encoding`` holds the target encodings' pseudo-count (``smoothing``) and the
    out-of-fold ``folds`` of every id encoder; ``features.baseline`` the bias shrinkage
    (``reg``, ``extra_reg`` for the taste groups); ``features.latent_factors`` (null: off)
    the out-of-fold latent-factor prediction ``lf_pred`` (``FactorPredictionEncoder`` params;
    its ``n_splits`` defaults to ``encoding.folds``). Missing keys keep the encoders' defaults.
    """
    ds, steps, encoded = cfg.dataset, [], []
    groups = [list(g) for g in ds.features.target_encoded]
    encoding = to_container(ds.features, "encoding") if ds.features.get("encoding") else {}
    folds = {"n_splits": encoding["folds"]} if "folds" in encoding else {}
    if groups:
        smoothing = {"smoothing": encoding["smoothing"]} if "smoothing" in encoding else {}
        steps.append(
            ("ids", TargetStatsEncoder(groups=groups, random_state=cfg.seed, **smoothing, **folds))
        )
        encoded += TargetStatsEncoder.output_names(groups)
    latent = ds.features.get("latent_factors")
    if latent:
        rec, params = ds.recommender, {**folds, **to_container(ds.features, "latent_factors")}
        encoder = FactorPredictionEncoder(
            user=rec.user, item=rec.item, random_state=cfg.seed, **params
        )
        steps.append(("latent", encoder))
        encoded += FactorPredictionEncoder.output_names()
    baseline = ds.features.get("baseline")
    if baseline:
        extra = [list(g) for g in baseline.get("extra", [])]
        encoder = BaselineBiases(
            user=baseline.user,
            item=baseline.item,
            reg=baseline.get("reg", 5.0),
            extra=extra,
            extra_reg=baseline.get("extra_reg"),
            random_state=cfg.seed,
            **folds,
        )
        steps.append(("baseline", encoder))
        encoded += BaselineBiases.output_names(extra)
    return steps, encoded


def make_pipeline(cfg: DictConfig, estimator, task: str) -> Pipeline:
    """Features -> [SMOTE] -> estimator, as an imblearn Pipeline (resampling fits only).

    An estimator that reads the raw columns itself (``takes_raw_inputs``: the factorization
    families) is the whole pipeline, its data-set-dependent params filled from the config.
    """
    ds = cfg.dataset
    if getattr(estimator, "takes_raw_inputs", False):
        return Pipeline([("model", for_dataset(estimator, ds))])
    steps, encoded = id_encoders(cfg)
    steps.append(
        (
            "features",
            TabularFeatures(
                numeric=[*ds.features.numeric, *encoded],
                categories={c: list(ds.schema[c].categories) for c in ds.features.categorical},
                engineered=list(ds.features.engineered),
            ),
        )
    )
    if task == "classification" and cfg.resample == "smote":
        steps.append(("resample", SMOTE(random_state=cfg.seed)))
    steps.append(("model", estimator))
    return Pipeline(steps)


def out_of_fold(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, task: str, cv, label: str,
                n_jobs=None) -> np.ndarray:
    """Out-of-fold predictions (probability of class 1, or value) on the splits of ``cv``.

    The folds are joblib tasks: ``n_jobs`` at a time, or on the cluster (``compute=dask``).
    """
    prep, tail = split_pipeline(pipeline)
    folds = shared_folds(prep, X, y, cv, task, n_jobs)
    log.info("%s: calibration, %d out-of-fold fits", label, folds.n_splits)
    return folds.predictions(tail)


def set_n_jobs(estimator, n_jobs: int):
    """Set ``n_jobs`` of an estimator and of every estimator inside it (a blend's members)."""
    keys = [k for k in estimator.get_params() if k == "n_jobs" or k.endswith("__n_jobs")]
    estimator.set_params(**dict.fromkeys(keys, n_jobs))
    return estimator


def _slim_for_serving(pipeline: Pipeline) -> None:
    """Prepare the fitted pipeline for prediction.

    The estimator predicts single-threaded (a thread pool costs more than it saves on
    small requests), and the resampler, which prediction skips, drops its fitted
    neighbour index so training rows do not ship inside the model file.
    """
    set_n_jobs(pipeline.steps[-1][1], 1)
    for i, (name, step) in enumerate(pipeline.steps):
        if name == "resample" and hasattr(step, "get_params"):
            pipeline.steps[i] = (name, clone(step))


def fit_version(cfg: DictConfig, X: pd.DataFrame, y: pd.Series, estimator=None) -> FitResult:
    """Tune (if the model has a search space), calibrate out-of-fold, fit on all rows.

    The feature steps are fitted once per fold (``shared_folds``): the search, the
    auto-select and the calibration share them when their folds are the same
    (``search_folds`` / ``automl.folds`` equal to ``cv_folds``), and a candidate already
    fitted on them (the search's best, the auto-select's winner) is not fitted again.
    """
    start = time.perf_counter()
    task, label = cfg.dataset.task, cfg.version_name
    estimator = estimator if estimator is not None else make_estimator(cfg, task)
    pipeline = make_pipeline(cfg, estimator, task)
    best_params, table = {}, None
    if cfg.model.get("search"):
        pipeline, best_params, table = run_search(cfg, pipeline, X, y, task, label)
    cv = cv_splitter(task, cfg.profile.cv_folds, cfg.seed)
    oof = out_of_fold(pipeline, X, y, task, cv, label, cfg.n_jobs)
    model_kwargs, cv_metrics = _calibrate(cfg, y, oof, task)
    log.info("%s: final fit on %d rows", label, len(y))
    pipeline.fit(X, y)
    _slim_for_serving(pipeline)
    ds = to_container(cfg, "dataset")
    model = CaretflowModel(
        pipeline=pipeline,
        task=task,
        input_schema=ds["schema"],
        reference=training_reference(X, ds["schema"]),
        version_name=label,
        catalogue=build_catalogue(X.assign(**{cfg.dataset.target: y}), cfg.dataset),
        contract=model_contract(cfg, _decision(model_kwargs, task)),
        **model_kwargs,
    )
    return FitResult(model, cv_metrics, best_params, table, time.perf_counter() - start)


def model_contract(cfg: DictConfig, decision: dict | None = None) -> dict:
    """The contract of a model trained with ``cfg`` and registered under ``registry.name``.

    Its ``dataset`` is the registered name (what a server's ``MODEL_NAME`` names). Task and
    schema digest do not depend on ``decision``, so train checks them before fitting.
    """
    ds = to_container(cfg, "dataset")
    return contract.from_dataset({**ds, "name": cfg.registry.name}, decision or {})


def _decision(model_kwargs: dict, task: str) -> dict:
    """The fitted decision rule as the contract states it."""
    if task == "classification":
        calibration = model_kwargs.get("calibration")
        return {"threshold": float(model_kwargs["threshold"]),
                "probability_calibration": calibration["method"] if calibration else "none"}
    return {"interval_method": INTERVAL_METHOD,
            "interval_level": float(model_kwargs["interval_level"])}


def _calibrate(cfg: DictConfig, y, oof, task: str) -> tuple[dict, dict[str, float]]:
    if task == "classification":
        calibration = fit_calibration(cfg.get("probability_calibration", "none"), y, oof)
        oof = apply_calibration(calibration, oof)
        threshold = best_f1_threshold(y, oof)
        cv_metrics = classification_metrics(y, oof, threshold)
        cv_metrics.update(threshold=threshold, **calibration_metrics(y, oof))
        return {"threshold": threshold, "calibration": calibration}, cv_metrics
    level = float(cfg.get("interval_level", 0.9))
    target_range = cfg.dataset.get("target_range")
    target_range = list(target_range) if target_range is not None else None
    pred = np.clip(oof, *target_range) if target_range else oof
    half = oof_residual_halfwidth(y, pred, level)
    cv_metrics = regression_metrics(y, pred)
    cv_metrics["interval_halfwidth"] = half
    kwargs = {"interval_halfwidth": half, "interval_level": level, "target_range": target_range}
    return kwargs, cv_metrics
