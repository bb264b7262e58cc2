"""A benchmark registry: versions of one data set trained in-process, on a private SQLite store.

The versions of ``--dataset`` (default churn) are trained with the quick profile on all rows
(unless ``--overrides`` says otherwise) and evaluated, so the store has a champion. Both
servers in the serving benchmark load ``models:/churn@champion`` from this store, so they
serve the very same registered model.

    python -m bench.registry --workdir /tmp/caretflow-bench --versions v2_random_forest,v4_xgboost
    python -m bench.registry --workdir /tmp/rec --dataset ratings --versions v2_random_forest
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

log = logging.getLogger("bench.registry")
DEFAULT_VERSIONS = "v2_random_forest,v3_rf_tuned,v4_xgboost"


def store_uri(workdir: Path) -> str:
    """The SQLite tracking URI inside ``workdir`` (artifacts go next to it)."""
    return f"sqlite:///{Path(workdir).resolve() / 'mlflow.db'}"


def champion(uri: str, name: str = "churn") -> dict:
    """Version number, version name and estimator of ``name@champion`` (empty when none)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        mv = MlflowClient(uri).get_model_version_by_alias(name, "champion")
    except MlflowException:
        return {}
    return {"version": mv.version, "version_name": mv.tags.get("version_name"),
            "estimator": mv.tags.get("estimator")}


def build(workdir: Path, versions: list[str], overrides: list[str] = (),
          dataset: str = "churn") -> str:
    """Train ``versions`` of ``dataset`` in-process (quick profile, all rows) and evaluate.

    Args:
        workdir: directory for ``mlflow.db`` (created).
        versions: version config names.
        overrides: extra Hydra overrides (e.g. ``profile.max_rows=1500`` for smoke runs).
        dataset: data set config name (also the registered model name).

    Returns:
        The tracking URI of the store holding ``<dataset>@champion``.
    """
    import mlflow

    from caretflow.config import compose
    from steps.evaluate import evaluate
    from steps.train import train

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    uri = store_uri(workdir)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ.pop("MLFLOW_RUN_ID", None)
    mlflow.set_tracking_uri(uri)
    base = [f"dataset={dataset}", "profile=quick", *overrides]
    runs = [train(compose([*base, f"version={v}"])) for v in versions]
    pre_id = mlflow.tracking.MlflowClient().get_run(runs[0]["run_id"]).data.tags[
        "preprocess_run_id"]
    evaluate(compose([*base, f"preprocess_run_id={pre_id}"]))
    log.info("champion: %s", champion(uri, dataset))
    return uri


def ensure(workdir: Path, versions: list[str], overrides: list[str] = (),
           dataset: str = "churn") -> str:
    """The store in ``workdir`` if it already has a ``dataset`` champion, else a fresh one."""
    uri = store_uri(workdir)
    if (Path(workdir) / "mlflow.db").exists() and champion(uri, dataset):
        log.info("reusing the registry in %s: champion %s", workdir, champion(uri, dataset))
        return uri
    return build(workdir, versions, overrides, dataset)


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--dataset", default="churn")
    parser.add_argument("--versions", default=DEFAULT_VERSIONS)
    parser.add_argument("--overrides", default="", help="extra Hydra overrides")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("bench").info(
        ensure(args.workdir, args.versions.split(","), args.overrides.split(), args.dataset))


if __name__ == "__main__":
    main()
