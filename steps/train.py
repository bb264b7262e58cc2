"""Step 2: build, tune and calibrate one model version, log it and register it under its alias."""

from __future__ import annotations

import logging

import hydra
import mlflow
import numpy as np
from omegaconf import DictConfig
from sklearn.inspection import permutation_importance

from caretflow import compute, model_card, plots, registry, runtime, tracking
from caretflow.cache import preprocess_key, train_key
from caretflow.config import normalise_argv
from caretflow.data import tables
from caretflow.inference.contract import ContractError
from caretflow.modelling.build import FitResult, fit_version, model_contract
from steps.preprocess import load_split, log_split_input, preprocess

log = logging.getLogger(__name__)


def resolve_preprocess_run(cfg: DictConfig, experiment_id: str) -> str:
    """The given preprocess run, else a finished one with the same inputs, else a new one."""
    if cfg.preprocess_run_id:
        return cfg.preprocess_run_id
    cached = tracking.find_cached_run(experiment_id, "preprocess", preprocess_key(cfg))
    if cached:
        log.info("reusing preprocess run %s", cached)
        return cached
    with tracking.outside_env_run():
        return preprocess(cfg)


def train(cfg: DictConfig) -> dict:
    """Train the configured version; return run id, registered version and CV metrics.

    The version is registered under ``registry.name`` (default: the data set's name).

    Raises:
        ContractError: that name already holds versions of another task or input schema;
            checked before anything runs, so nothing is trained, logged or registered.
    """
    ds, name = cfg.dataset, cfg.registry.name
    compute.check(cfg)  # an unreachable cluster fails before any work
    experiment_id = tracking.setup(ds.name)
    registry.check_contract(name, model_contract(cfg))
    pre_id = resolve_preprocess_run(cfg, experiment_id)
    train_df = load_split(pre_id, "train")
    X, y = train_df[tables.feature_columns(ds)], train_df[ds.target]
    key = train_key(cfg, pre_id)
    with (
        compute.session(cfg),
        tracking.step_run("train", cfg, key, run_name=f"train-{cfg.version_name}") as run,
    ):
        mlflow.set_tags(
            {"version_name": cfg.version_name, "preprocess_run_id": pre_id, "registered_name": name}
        )
        log_split_input(train_df, ds, pre_id, "training")
        log.info(
            "%s: training on %d rows (%s, %s profile)",
            cfg.version_name,
            len(y),
            ds.task,
            cfg.profile.name,
        )
        estimator = None
        if cfg.model.name == "auto":
            from caretflow.modelling.automl import select_estimator

            estimator, board, choice, scores = select_estimator(cfg, X, y)
            mlflow.log_text(board.to_csv(), "automl/leaderboard.csv")
            mlflow.log_metrics({f"automl_cv_{name}": v for name, v in scores.items()})
            mlflow.set_tags({"automl_winner": type(estimator).__name__, "automl_choice": choice})
        result = fit_version(cfg, X, y, estimator)
        _log_training(run.info.run_id, result, X, y)
        version = registry.log_and_register(
            result.model,
            X,
            name,
            cfg.version_name,
            tags={
                "version_name": cfg.version_name,
                "dataset": ds.name,
                "git_commit": tracking.git_commit(),
                "preprocess_run_id": pre_id,
                "estimator": type(result.model.pipeline.steps[-1][1]).__name__,
            },
        )
        mlflow.set_tag("registered_version", version)
        model_card.write(name, version, model_card.card(
            cfg.version_name, type(result.model.pipeline.steps[-1][1]).__name__,
            result.model.contract, pre_id, result.cv_metrics))
    log.info(
        "%s: fitted (search, calibration, final fit) in %.1fs, cv %s",
        cfg.version_name,
        result.seconds,
        {k: round(v, 4) for k, v in result.cv_metrics.items()},
    )
    return {"run_id": run.info.run_id, "version": version, "cv_metrics": result.cv_metrics}


def _log_training(run_id: str, result: FitResult, X, y) -> None:
    mlflow.log_metrics({f"cv_{k}": v for k, v in result.cv_metrics.items()})
    mlflow.log_metric("train_seconds", result.seconds)
    if result.best_params:
        mlflow.log_params({f"best.{k}": v for k, v in result.best_params.items()})
    if result.search_table is not None:
        mlflow.log_text(result.search_table.to_csv(index=False), "search/results.csv")
    names, importances = _importances(result, X, y)
    plots.feature_importance_plot(run_id, names, importances, "train/feature_importance.png")


def _importances(result: FitResult, X, y):
    pipeline = result.model.pipeline
    est = pipeline.steps[-1][1]
    features = pipeline.named_steps.get("features")  # none: the estimator reads raw columns
    names = list(features.get_feature_names_out()) if features is not None else []
    if names and hasattr(est, "feature_importances_"):
        return names, np.asarray(est.feature_importances_)
    if names and hasattr(est, "coef_"):
        return names, np.abs(np.ravel(est.coef_))[: len(names)]
    sample = X.sample(min(len(X), 1500), random_state=0)
    res = permutation_importance(pipeline, sample, y.loc[sample.index], n_repeats=3, random_state=0)
    return list(X.columns), res.importances_mean


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: ``python -m steps.train version=v2_random_forest`` (or ``-m``)."""
    runtime.freeze_imports()
    try:
        train(cfg)
    except ContractError as exc:
        log.error("%s", exc)
        raise SystemExit(1) from exc


if __name__ == "__main__":
    normalise_argv()
    main()
    runtime.freeze_before_exit()
