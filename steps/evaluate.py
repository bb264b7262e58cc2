"""Step 3: score every version of a pipeline run on the held-out test split, gate, pick by CV."""

from __future__ import annotations

import logging

import hydra
import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from caretflow import champion, plots, registry, runtime, tracking
from caretflow.cache import evaluate_key, preprocess_key
from caretflow.config import normalise_argv, to_container
from caretflow.data import tables
from caretflow.inference.ranking import ranking_metrics
from caretflow.metrics import (
    calibration_metrics,
    classification_metrics,
    interval_metrics,
    regression_metrics,
)
from caretflow.modelling.selection import (
    Candidate,
    Comparison,
    apply_gate,
    summary_table,
    unseen_rows,
)
from steps.preprocess import load_split, log_split_input

log = logging.getLogger(__name__)


def score(model, X: pd.DataFrame, y: pd.Series, task: str) -> tuple[dict[str, float], object]:
    """Test metrics of one model (and its raw outputs for plots)."""
    if task == "classification":
        proba = model.predict_proba(X)[:, 1]
        out = classification_metrics(y, proba, model.threshold)
        out.update(calibration_metrics(y, proba))  # test_brier, test_ece (10 equal-width bins)
        return out, proba
    point, lower, upper = model.predict_interval(X)
    out = regression_metrics(y, point)
    out.update(interval_metrics(y, lower, upper))
    return out, point


def _log_to_origin(run_id: str, metrics: dict[str, float]) -> None:
    now = int(pd.Timestamp.now().timestamp() * 1000)
    batch = [Metric(f"test_{k}", float(v), now, 0) for k, v in metrics.items()]
    MlflowClient().log_batch(run_id, metrics=batch)


def evaluate(cfg: DictConfig) -> dict:
    """Score, log to originating runs, gate and move ``champion`` / ``challenger``.

    The test split gates and reports; the choice goes by each version's cross-validated
    primary metric (``caretflow.modelling.selection``).
    """
    ds, task, name = cfg.dataset, cfg.dataset.task, cfg.registry.name
    experiment_id = tracking.setup(ds.name)
    pre_id = cfg.preprocess_run_id or tracking.find_cached_run(
        experiment_id, "preprocess", preprocess_key(cfg)
    )
    if not pre_id:
        raise ValueError("no preprocess run: pass preprocess_run_id or run preprocess first")
    versions = registry.versions_of_pipeline(name, pre_id)
    if not versions:
        raise ValueError(f"no registered {name!r} versions come from preprocess run {pre_id}")
    test = load_split(pre_id, "test")
    X, y = test[tables.feature_columns(ds)], test[ds.target]
    primary, gate = ds.primary_metric[task], to_container(ds, "gate")
    key = evaluate_key(cfg, pre_id, [mv.run_id for mv in versions])
    with tracking.step_run("evaluate", cfg, key, run_name=f"evaluate-{name}"):
        mlflow.set_tags({"preprocess_run_id": pre_id, "registered_name": name})
        log_split_input(test, ds, pre_id, "test")
        rec = ds.get("recommender")
        users = test[rec.user].to_numpy() if rec and task == "regression" else None
        floor = MlflowClient().get_run(pre_id).data.metrics.get("test_noise_floor_rmse")
        candidates, models = [], {}
        for mv in versions:
            model = registry.load_model(f"models:/{name}/{mv.version}")
            cand = _score_version(mv, model, X, y, task, floor, users)
            models[cand.version] = model
            mlflow.log_metrics(
                {f"{cand.version_name}.test_{k}": v for k, v in cand.metrics.items()}
            )
            candidates.append(cand)
        apply_gate(candidates, gate)
        compare = _comparer(name, cfg, test, candidates, models, pre_id)
        retrain = cfg.get("retrain")  # set: promotion by evidence on the newest labels
        retrain = retrain if retrain and retrain.get("from_version") else None
        choice = champion.decide(candidates, primary, compare, retrain)
        champion.set_aliases(name, candidates, choice, retrain)
        champion.write_cards(name, candidates, choice, models, pre_id,
                             retrained=retrain is not None)
        table = summary_table(candidates, choice, primary)
        mlflow.log_text(table.to_csv(index=False), "summary.csv")
        mlflow.set_tag("champion_choice", choice.note)
        if choice.comparison_rows is not None:
            mlflow.log_metric("champion_comparison_rows", choice.comparison_rows)
        log.info(
            "%s results (chosen by cv_%s, gated on test):\n%s\n%s",
            name,
            primary,
            table.to_string(index=False),
            choice.note,
        )
    return {
        "champion": choice.champion.version if choice.champion else None,
        "challenger": choice.challenger.version if choice.challenger else None,
        "table": table,
        "note": choice.note,
        "comparison_rows": choice.comparison_rows,
    }


def _score_version(mv, model, X, y, task, floor, users=None) -> Candidate:
    vname = mv.tags.get("version_name", mv.version)
    metrics, raw = score(model, X, y, task)
    if floor:
        metrics["rmse_over_noise_floor"] = metrics["rmse"] / floor
    if users is not None:
        metrics.update(ranking_metrics(users, raw, y))
    _log_to_origin(mv.run_id, metrics)
    if task == "classification":
        plots.classification_plots(mv.run_id, y, raw, model.threshold, "test")
        plots.reliability_plot(mv.run_id, y, raw, "test/reliability.png")
    else:
        plots.regression_plots(mv.run_id, y, raw, "test")
    log.info("%s v%s: %s", vname, mv.version, {k: round(v, 4) for k, v in metrics.items()})
    cv = {
        k.removeprefix("cv_"): v
        for k, v in MlflowClient().get_run(mv.run_id).data.metrics.items()
        if k.startswith("cv_")
    }
    return Candidate(str(mv.version), vname, mv.run_id, metrics, cv=cv)


def _comparer(name, cfg, test, candidates, models, pre_id):
    """``choose``'s comparison with the current champion, or None when there is none to make.

    Only a champion outside this pipeline run's versions is compared: on the test rows it
    never trained on (all of them when it comes from the same preprocess run).
    """
    mv = registry.alias_version(name, "champion")
    if mv is None or any(c.version == str(mv.version) for c in candidates):
        return None
    try:
        model = registry.load_model(f"models:/{name}/{mv.version}")
    except Exception as exc:  # noqa: BLE001 - a broken old champion must not block a new one
        log.warning("current champion v%s cannot be loaded (%s); ignoring it", mv.version, exc)
        return None
    ds = cfg.dataset
    mask = _unseen_by(mv, test, list(ds.id_columns), pre_id)
    current = Candidate(str(mv.version), mv.tags.get("version_name", mv.version), mv.run_id, {})
    X, y = test.loc[mask, tables.feature_columns(ds)], test.loc[mask, ds.target]

    def compare(best: Candidate) -> Comparison:
        if not mask.any():
            return Comparison(current, 0)
        current.metrics, _ = score(model, X, y, ds.task)
        apply_gate([current], to_container(ds, "gate"))
        best_metrics, _ = score(models[best.version], X, y, ds.task)
        return Comparison(current, int(mask.sum()), best_metrics)

    return compare


def _unseen_by(mv, test: pd.DataFrame, id_columns: list[str], pre_id: str) -> np.ndarray:
    """Mask of the test rows the model version ``mv`` did not train on."""
    origin = mv.tags.get("preprocess_run_id")
    if origin == pre_id:
        return np.ones(len(test), dtype=bool)
    try:
        trained_on = load_split(origin, "train")
    except Exception as exc:  # noqa: BLE001 - unknown training rows: no comparison
        log.warning("training split of champion v%s unknown (%s)", mv.version, exc)
        return np.zeros(len(test), dtype=bool)
    return unseen_rows(test, trained_on, id_columns)


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: ``python -m steps.evaluate dataset=churn preprocess_run_id=...``."""
    runtime.freeze_imports()
    evaluate(cfg)


if __name__ == "__main__":
    normalise_argv()
    main()
    runtime.freeze_before_exit()
