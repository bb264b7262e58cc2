"""Step 1: load and validate the raw data, split train/test, log both splits."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import hydra
import mlflow
from omegaconf import DictConfig

from caretflow import runtime, tracking
from caretflow.cache import fingerprint, preprocess_key
from caretflow.config import normalise_argv, resolve_path, to_container
from caretflow.data import tables
from caretflow.data.ratings_generator import noise_floor_rmse
from caretflow.monitoring import profile
from caretflow.retrain.source import PredictionLogSource

log = logging.getLogger(__name__)
SPLIT_DIR = "split"


def preprocess(cfg: DictConfig) -> str:
    """Validate, split and log the data set; return the preprocess run id.

    Raises:
        DataValidationError: the raw data does not match the data set config.
    """
    ds = cfg.dataset
    tracking.setup(ds.name)
    key = preprocess_key(cfg)
    with tracking.step_run("preprocess", cfg, key, run_name=f"preprocess-{ds.name}") as run:
        raw = tables.load_raw(ds)
        log.info("%s: %d raw rows, %d columns", ds.name, len(raw), raw.shape[1])
        df, train, test = tables.training_split(raw, cfg)
        log.info("%s: split %d train / %d test rows", ds.name, len(train), len(test))

        stats = {"n_rows": len(df), "n_train": len(train), "n_test": len(test)}
        if ds.task == "classification":
            stats.update(
                train_positive_rate=float(train[ds.target].mean()),
                test_positive_rate=float(test[ds.target].mean()),
            )
        if "expected_rating" in df.columns:
            stats.update(
                noise_floor_rmse=noise_floor_rmse(df), test_noise_floor_rmse=noise_floor_rmse(test)
            )
            log.info(
                "%s: generator noise floor RMSE %.4f (test %.4f)",
                ds.name,
                stats["noise_floor_rmse"],
                stats["test_noise_floor_rmse"],
            )
        mlflow.log_metrics(stats)
        mlflow.set_tag("data_fingerprint", fingerprint(ds))
        _log_inputs(df, train, test, ds)
        if cfg.get("retrain") and cfg.retrain.get("manifest"):
            _log_snapshot(df, ds, Path(cfg.retrain.manifest))
        _log_profile(train, test, ds)
        return run.info.run_id


def _log_inputs(df, train, test, ds: DictConfig) -> None:
    kind = ds.source.kind
    source = str(resolve_path(ds.source.path)) if kind in ("csv", "parquet") else "generator"
    features = [c for c in df.columns if c not in tables.ORACLE_COLUMNS]
    for frame, context in ((train, "training"), (test, "test")):
        dataset = mlflow.data.from_pandas(
            frame[features], source=source, targets=ds.target, name=f"{ds.name}-{context}"
        )
        mlflow.log_input(dataset, context=context)
    with tempfile.TemporaryDirectory() as tmp:
        for frame, name in ((train, "train"), (test, "test")):
            path = Path(tmp) / f"{name}.parquet"
            frame.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), SPLIT_DIR)


def _log_snapshot(df, ds: DictConfig, manifest_path: Path) -> None:
    """A retrain snapshot: an MLflow dataset input whose source is the prediction log."""
    manifest = json.loads(manifest_path.read_text())
    source = PredictionLogSource(manifest["prediction_db"], manifest["model"],
                                 manifest["window_hours"], manifest["until"])
    features = [c for c in df.columns if c not in tables.ORACLE_COLUMNS]
    dataset = mlflow.data.from_pandas(df[features], source=source, targets=ds.target,
                                      name=f"{ds.name}-snapshot", digest=manifest["digest"])
    mlflow.log_input(dataset, context="retrain")
    mlflow.log_params({f"snapshot.{k}": manifest[k] for k in
                       ("policy", "window_hours", "prediction_db", "retrained_from")})
    mlflow.log_params({f"snapshot.rows_{k}": v for k, v in manifest["counts"].items()})
    mlflow.set_tags({"snapshot_digest": manifest["digest"],
                     "retrained_from": manifest["retrained_from"]})
    mlflow.log_dict(manifest, "data/snapshot.json")


def _log_profile(train, test, ds: DictConfig) -> None:
    """The data profile (``data/profile.html`` and ``data/*.png``)."""
    with tempfile.TemporaryDirectory() as tmp:
        for path in profile.write(train, test, to_container(ds), Path(tmp)):
            mlflow.log_artifact(str(path), "data")


def log_split_input(frame, ds: DictConfig, preprocess_run_id: str, context: str) -> None:
    """Link the split a step reads to its run (the MLflow UI's "Datasets" panel)."""
    split = "train" if context == "training" else "test"
    root = mlflow.get_run(preprocess_run_id).info.artifact_uri
    name = f"{ds.name}-{context}"
    try:
        dataset = mlflow.data.from_pandas(frame, source=f"{root}/{SPLIT_DIR}/{split}.parquet",
                                          targets=ds.target, name=name)
    except mlflow.exceptions.MlflowException:  # an artifact store MLflow cannot name
        dataset = mlflow.data.from_pandas(frame, targets=ds.target, name=name)
    mlflow.log_input(dataset, context=context)


def load_split(run_id: str, name: str):
    """Read ``train`` or ``test`` back from a preprocess run."""
    import pandas as pd

    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=f"{SPLIT_DIR}/{name}.parquet"
    )
    return pd.read_parquet(path)


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: ``python -m steps.preprocess dataset=churn``."""
    runtime.freeze_imports()
    preprocess(cfg)


if __name__ == "__main__":
    normalise_argv()
    main()
    runtime.freeze_before_exit()
