"""MLflow tracking set-up, step runs, and finding a finished run by its cache key."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
import tempfile
import warnings
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from caretflow.cache import code_version
from caretflow.config import ROOT, flatten, to_container
from caretflow.store_uri import tracking_uri

log = logging.getLogger(__name__)

TAG_STEP, TAG_KEY, TAG_DATASET = "caretflow.step", "caretflow.cache_key", "caretflow.dataset"
PARENT_ENV = "CARETFLOW_PARENT_RUN_ID"


def local_artifact_root(uri: str) -> str | None:
    """``mlartifacts`` beside a SQLite store; None for a server that manages artifacts."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    return None


def experiment_name(dataset: str) -> str:
    """One experiment per data set."""
    return f"caretflow-{dataset}"


def quiet_warnings() -> None:
    """Silence MLflow hints that do not apply (integer schemas are validated upstream)."""
    warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
    warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column.*")


def setup(dataset: str) -> str:
    """Point MLflow at the tracking store and make sure the experiment exists; return its id."""
    quiet_warnings()
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    name = experiment_name(dataset)
    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        location = local_artifact_root(uri)
        location = f"{location}/{name}" if location else None
        exp_id = client.create_experiment(name, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    if not os.environ.get("MLFLOW_RUN_ID"):
        mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def git_commit() -> str:
    """HEAD commit of the repo, or ``unknown`` outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def find_cached_run(experiment_id: str, step: str, key: str) -> str | None:
    """Newest finished run of ``step`` with the same cache key, if any."""
    runs = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_STEP}` = '{step}' and tags.`{TAG_KEY}` = '{key}' "
        "and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


@contextlib.contextmanager
def step_run(step: str, cfg: DictConfig, key: str, run_name: str | None = None):
    """Start (or resume, under ``mlflow run``) the step's run and log its config."""
    with mlflow.start_run(run_name=run_name) as run:
        tags = {
            TAG_STEP: step,
            TAG_KEY: key,
            TAG_DATASET: cfg.dataset.name,
            "git_commit": git_commit(),
            "code_version": code_version(),
        }
        if os.environ.get(PARENT_ENV):
            tags["mlflow.parentRunId"] = os.environ[PARENT_ENV]
        mlflow.set_tags(tags)
        log_config(cfg)
        yield run


@contextlib.contextmanager
def outside_env_run():
    """Let a step start its own run even when ``mlflow run`` gave this process one."""
    saved = os.environ.pop("MLFLOW_RUN_ID", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["MLFLOW_RUN_ID"] = saved


def log_config(cfg: DictConfig) -> None:
    """Log the resolved config as params (flattened) and as a YAML artifact."""
    resolved = to_container(cfg)
    params = {k: str(v)[:500] for k, v in flatten(resolved).items()}
    items = list(params.items())
    for i in range(0, len(items), 100):
        mlflow.log_params(dict(items[i : i + 100]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)))
        mlflow.log_artifact(str(path))


def _cli() -> None:
    parser = argparse.ArgumentParser(description="caretflow tracking helpers")
    parser.add_argument("command", choices=["ensure-experiment"])
    parser.add_argument("dataset")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    exp_id = setup(args.dataset)
    log.info("experiment %s (id %s) at %s", experiment_name(args.dataset), exp_id, tracking_uri())


if __name__ == "__main__":
    _cli()
