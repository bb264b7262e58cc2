"""The benchmark registry: the full-profile pipeline ``make run`` runs, on a private store.

``python -m bench.registry --workdir DIR`` runs ``mlflow run . -e main`` (all four versions,
default ``full`` profile) for ``churn`` and ``ratings`` into ``DIR/mlflow.db``, so the store
holds the very champions ``make run`` serves. A second call reuses every step through the
pipeline's own cache (seconds); changed code or configs retrain what they touch
(``--as-is`` skips the pipeline when every data set already has a champion). It prints each
champion's version, version name and model family, and every version's CV and test figure,
and writes them to ``bench/results/registry.json``. Every serving benchmark loads
``models:/<name>@champion`` from this store.

    python -m bench.registry --workdir /tmp/caretflow-bench/registry
    python -m bench.registry --workdir /tmp/small --datasets churn --overrides profile=quick

``ensure`` builds a small quick-profile registry in-process, for scripts that only need
some model of a data set (``bench/recommend_latency.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

log = logging.getLogger("bench.registry")
DEFAULT_VERSIONS = "v2_random_forest,v3_rf_tuned,v4_xgboost"


def store_uri(workdir: Path) -> str:
    """The SQLite tracking URI inside ``workdir`` (artifacts go next to it)."""
    return f"sqlite:///{Path(workdir).resolve() / 'mlflow.db'}"


def family(estimator) -> str:
    """Model family of a fitted final estimator: its class, with the members of an ensemble."""
    name = type(estimator).__name__
    members = getattr(estimator, "estimators", None)
    if members:
        return f"{name}({', '.join(type(m).__name__ for _, m in members)})"
    return name


def champion(uri: str, name: str = "churn", load: bool = False) -> dict:
    """Version number, version name and estimator of ``name@champion`` (empty when none).

    Args:
        uri: tracking URI of the store.
        name: registered model name.
        load: also load the model and name its family (``family``), ensemble members included.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        mv = MlflowClient(uri).get_model_version_by_alias(name, "champion")
    except MlflowException:
        return {}
    out = {"name": name, "version": mv.version, "version_name": mv.tags.get("version_name"),
           "estimator": mv.tags.get("estimator"), "git_commit": mv.tags.get("git_commit")}
    if load:
        import mlflow

        from caretflow.registry import load_model

        mlflow.set_tracking_uri(uri)
        model = load_model(f"models:/{name}@champion")
        out["family"] = family(model.pipeline.steps[-1][1])
    return out


def versions(uri: str, name: str) -> list[dict]:
    """Every registered version of ``name``: aliases, estimator, CV and test primary metric."""
    from mlflow.tracking import MlflowClient

    client, out = MlflowClient(uri), []
    for mv in client.search_model_versions(f"name = '{name}'"):
        run = client.get_run(mv.run_id).data
        metric = "roc_auc" if mv.tags.get("task") == "classification" else "rmse"
        out.append({"version": mv.version, "version_name": mv.tags.get("version_name"),
                    "estimator": mv.tags.get("estimator"),
                    "aliases": sorted(client.get_model_version(name, mv.version).aliases),
                    "metric": metric, "cv": _round(run.metrics.get(f"cv_{metric}")),
                    "test": _round(run.metrics.get(f"test_{metric}")),
                    "automl_choice": run.tags.get("automl_choice"),
                    "automl_cv": {k.removeprefix("automl_cv_"): _round(v)
                                  for k, v in run.metrics.items() if k.startswith("automl_cv_")},
                    "profile": run.params.get("profile.name")})
    return sorted(out, key=lambda v: int(v["version"]))


def _round(value):
    return None if value is None else round(value, 4)


def pipeline(workdir: Path, datasets: list[str], overrides: str = "") -> str:
    """``mlflow run . -e main`` for each data set into ``workdir`` (cached steps reused).

    Args:
        workdir: directory for ``mlflow.db`` and ``mlartifacts`` (created).
        datasets: data set names (each also its registered model name).
        overrides: Hydra overrides for every step (empty: the ``full`` profile, as ``make run``).

    Returns:
        The tracking URI of the store.

    Raises:
        RuntimeError: a pipeline run failed (the end of its output in the message).
    """
    from caretflow.pipeline_run import mlflow_run_main

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    uri = store_uri(workdir)
    for dataset in datasets:
        proc, seconds = mlflow_run_main(uri, dataset=dataset, overrides=overrides,
                                        echo=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{dataset}: pipeline failed\n{proc.stderr[-3000:]}")
        reused = proc.stderr.count("reused run")
        log.info("%s: pipeline done in %.1f s (%d steps reused from the cache)", dataset,
                 seconds, reused)
    return uri


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
    """CLI: run (or reuse) the pipeline per data set, then print each champion."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--datasets", default="churn,ratings")
    parser.add_argument("--overrides", default="", help="Hydra overrides (default: none = full)")
    parser.add_argument("--as-is", action="store_true",
                        help="use the store as it is when every data set has a champion "
                             "(no pipeline run, so no retraining after code changes)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "registry.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    datasets = args.datasets.split(",")
    uri = store_uri(args.workdir)
    reuse = args.as_is and all(champion(uri, name) for name in datasets)
    if not reuse:
        uri = pipeline(args.workdir, datasets, args.overrides)
    doc = {"uri": uri, "pipeline_run": not reuse, "models": {}}
    for name in datasets:
        champ = champion(uri, name, load=True)
        doc["models"][name] = {"champion": champ, "versions": versions(uri, name)}
        log.info("%s@champion: version %s (%s), %s", name, champ["version"],
                 champ["version_name"], champ["family"])
        for v in doc["models"][name]["versions"]:
            log.info("  %s %-17s %-24s cv_%s %s  test_%s %s  %s", v["version"], v["version_name"],
                     v["estimator"], v["metric"], v["cv"], v["metric"], v["test"],
                     ",".join(v["aliases"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    log.info("registry: %s (wrote %s)", uri, args.out)


if __name__ == "__main__":
    main()
