"""Step 3: score every version of a pipeline run on the held-out test split, gate, pick."""

from __future__ import annotations

import logging

import hydra
import mlflow
import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from caretflow import metrics as M
from caretflow import plots, registry, runtime, tracking
from caretflow.cache import evaluate_key, preprocess_key
from caretflow.config import normalise_argv, to_container
from caretflow.data import tables as D
from caretflow.inference.ranking import ranking_metrics
from caretflow.modelling.selection import Candidate, apply_gate, choose
from steps.preprocess import load_split

log = logging.getLogger(__name__)


def score(model, X: pd.DataFrame, y: pd.Series, task: str) -> tuple[dict[str, float], object]:
    """Test metrics of one model (and its raw outputs for plots)."""
    if task == "classification":
        proba = model.predict_proba(X)[:, 1]
        return M.classification_metrics(y, proba, model.threshold), proba
    point, lower, upper = model.predict_interval(X)
    out = M.regression_metrics(y, point)
    out.update(M.interval_metrics(y, lower, upper))
    return out, point


def _log_to_origin(run_id: str, metrics: dict[str, float]) -> None:
    now = int(pd.Timestamp.now().timestamp() * 1000)
    batch = [Metric(f"test_{k}", float(v), now, 0) for k, v in metrics.items()]
    MlflowClient().log_batch(run_id, metrics=batch)


def evaluate(cfg: DictConfig) -> dict:
    """Score, log to originating runs, gate and move ``champion`` / ``challenger``."""
    ds, task = cfg.dataset, cfg.dataset.task
    experiment_id = tracking.setup(ds.name)
    pre_id = cfg.preprocess_run_id or tracking.find_cached_run(
        experiment_id, "preprocess", preprocess_key(cfg)
    )
    if not pre_id:
        raise ValueError("no preprocess run: pass preprocess_run_id or run preprocess first")
    versions = registry.versions_of_pipeline(ds.name, pre_id)
    if not versions:
        raise ValueError(f"no registered {ds.name!r} versions come from preprocess run {pre_id}")
    test = load_split(pre_id, "test")
    X, y = test[D.feature_columns(ds)], test[ds.target]
    primary, gate = ds.primary_metric[task], to_container(ds, "gate")
    key = evaluate_key(cfg, pre_id, [mv.run_id for mv in versions])
    with tracking.step_run("evaluate", cfg, key, run_name=f"evaluate-{ds.name}"):
        mlflow.set_tag("preprocess_run_id", pre_id)
        rec = ds.get("recommender")
        users = test[rec.user].to_numpy() if rec and task == "regression" else None
        floor = MlflowClient().get_run(pre_id).data.metrics.get("test_noise_floor_rmse")
        candidates = []
        for mv in versions:
            cand = _score_version(ds.name, mv, X, y, task, floor, users)
            mlflow.log_metrics(
                {f"{cand.version_name}.test_{k}": v for k, v in cand.metrics.items()}
            )
            candidates.append(cand)
        apply_gate(candidates, gate)
        current = _current_champion(ds.name, candidates, X, y, task, floor)
        if current is not None:
            apply_gate([current], gate)
        champion, challenger = choose(candidates, current, primary)
        _set_aliases(ds.name, candidates, champion, challenger)
        table = summary_table(candidates, champion, challenger, primary)
        mlflow.log_text(table.to_csv(index=False), "summary.csv")
        log.info(
            "%s test results (primary %s):\n%s", ds.name, primary, table.to_string(index=False)
        )
    return {
        "champion": champion.version if champion else None,
        "challenger": challenger.version if challenger else None,
        "table": table,
    }


def _score_version(name, mv, X, y, task, floor, users=None) -> Candidate:
    vname = mv.tags.get("version_name", mv.version)
    model = registry.load_model(f"models:/{name}/{mv.version}")
    metrics, raw = score(model, X, y, task)
    if floor:
        metrics["rmse_over_noise_floor"] = metrics["rmse"] / floor
    if users is not None:
        metrics.update(ranking_metrics(users, raw, y))
    _log_to_origin(mv.run_id, metrics)
    if task == "classification":
        plots.classification_plots(mv.run_id, y, raw, model.threshold, "test")
    else:
        plots.regression_plots(mv.run_id, y, raw, "test")
    log.info("%s v%s: %s", vname, mv.version, {k: round(v, 4) for k, v in metrics.items()})
    return Candidate(mv.version, vname, mv.run_id, metrics)


def _current_champion(name, candidates, X, y, task, floor) -> Candidate | None:
    mv = registry.alias_version(name, "champion")
    if mv is None:
        return None
    for c in candidates:
        if c.version == mv.version:
            return c
    try:
        model = registry.load_model(f"models:/{name}/{mv.version}")
    except Exception as exc:  # noqa: BLE001 - a broken old champion must not block a new one
        log.warning("current champion v%s cannot be loaded (%s); ignoring it", mv.version, exc)
        return None
    metrics, _ = score(model, X, y, task)
    return Candidate(mv.version, mv.tags.get("version_name", mv.version), mv.run_id, metrics)


def _set_aliases(name, candidates, champion, challenger) -> None:
    client = MlflowClient()
    for c in candidates:
        client.set_model_version_tag(
            name, c.version, "gate", "passed" if c.passed else "failed: " + "; ".join(c.failures)
        )
    if champion is None:
        log.warning("%s: no version passed the gate; champion unchanged", name)
        return
    client.set_registered_model_alias(name, "champion", champion.version)
    if challenger is not None:
        client.set_registered_model_alias(name, "challenger", challenger.version)
    log.info(
        "%s: champion v%s (%s), challenger %s",
        name,
        champion.version,
        champion.version_name,
        f"v{challenger.version} ({challenger.version_name})" if challenger else "none",
    )


def summary_table(candidates, champion, challenger, primary) -> pd.DataFrame:
    """One row per version: key test metrics, gate and role."""
    shown = [
        "roc_auc",
        "f1",
        "precision",
        "recall",
        "accuracy",
        "rmse",
        "mae",
        "r2",
        "interval_coverage",
        "ndcg_at_10",
        "rmse_over_noise_floor",
    ]
    rows = []
    for c in candidates:
        role = (
            "champion"
            if champion and c.version == champion.version
            else "challenger"
            if challenger and c.version == challenger.version
            else ""
        )
        row = {"version": c.version, "version_name": c.version_name}
        row.update({k: round(c.metrics[k], 4) for k in shown if k in c.metrics})
        row.update(gate="passed" if c.passed else "failed", role=role)
        rows.append(row)
    return pd.DataFrame(rows).sort_values(primary, ascending=not M.HIGHER_IS_BETTER[primary])


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: ``python -m steps.evaluate dataset=churn preprocess_run_id=...``."""
    runtime.freeze_imports()
    evaluate(cfg)


if __name__ == "__main__":
    normalise_argv()
    main()
    runtime.freeze_before_exit()
