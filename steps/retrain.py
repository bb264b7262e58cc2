r"""Retrain from production feedback: snapshot the labelled log, run the pipeline, promote.

Interface (DESIGN.md "Retraining"; the watcher calls exactly this)::

    mlflow run . -e retrain --env-manager local -P dataset=churn -P window_hours=720 \
        -P policy=append -P prediction_db=sqlite:///.../predictions.db \
        -P overrides="profile=quick retrain.promote=direct" -P force=false
    make retrain [MODEL_NAME=churn RETRAIN_WINDOW_HOURS=720 POLICY=append PREDICTION_DB=... \
                  OVERRIDES=... FORCE=false]
    python -m steps.retrain --dataset churn --window-hours 720 --policy append ...

Parameters: ``dataset`` (the data set, which is the registered model name unless the
overrides set ``registry.name``: that name's ``@champion`` is retrained),
``window_hours`` (720), ``policy`` (``append`` | ``window`` | ``replace``), ``prediction_db``
(default ``PREDICTION_DB_URL``, else the server's default SQLite file), ``overrides`` (Hydra,
space separated, for every step), ``force`` (rerun cached steps).

Config keys (``conf/config.yaml``, block ``retrain``): ``promote`` (``ab`` default: a better
version becomes ``@challenger``; ``direct``: ``@champion``, the old one ``@previous``),
``test_share`` (0.2: the newest production labels held out), ``min_comparison_rows`` (100:
fewest holdout rows unseen by the champion that count as evidence), ``min_rows`` (500, for
``replace``), ``window.half_life_hours`` / ``window.max_age_hours`` (``window``), ``versions``
(``champion``: its version name; or a comma list). ``from_version``, ``snapshot_digest`` and
``manifest`` are set by this step for the pipeline it runs.

Exit codes (``python -m steps.retrain``; ``mlflow run`` fails on any non-zero): 0 done
(whatever the decision), 2 snapshot refused (empty window, every record rejected, ``replace``
below ``min_rows``), 3 nothing to retrain (no ``@champion`` or no contract), 1 other errors.

Logged: this run (tag ``caretflow.step=retrain``) gets params ``window_hours``, ``policy``,
``prediction_db`` (no password), metrics ``rows_base``, ``rows_production``,
``rows_base_dropped``, ``rows_labelled``, ``rows_rejected``, ``retrain_seconds`` and the
``retrain_before_*`` / ``retrain_after_*`` holdout metrics, tags ``retrain_outcome``
(``refused`` | ``champion`` | ``challenger`` | ``kept`` | ``failed_gate``),
``retrained_from``, ``snapshot_digest``, ``new_version``, ``preprocess_run_id``,
``evaluate_run_id``, artifacts ``snapshot/<name>-<digest>.parquet`` and
``snapshot/failures.json``. The pipeline's preprocess run logs the snapshot as dataset input
``<name>-snapshot`` (context ``retrain``, source type ``prediction_log``: URL and window);
the retrained versions carry tags ``retrained_from`` and ``snapshot_digest``; the evaluate
run holds ``retrain_decision``. A ``retrain_finished`` alert goes to ``ALERT_WEBHOOK_URLS``
and into the prediction database's alerts table (``GET /alerts`` lists it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import mlflow

from caretflow import alerts, registry, runtime, tracking
from caretflow.cache import sha256_of
from caretflow.config import ROOT, compose, split_overrides
from caretflow.data import tables
from caretflow.retrain import snapshot
from caretflow.retrain.feedback import labelled_records, safe_url
from caretflow.retrain.snapshot import SnapshotError
from steps.main import run_pipeline
from steps.monitor import default_prediction_db

log = logging.getLogger("caretflow.retrain")
SNAPSHOT_DIR = ROOT / "outputs" / "retrain"
EXIT_REFUSED, EXIT_NOTHING = 2, 3


class Refused(Exception):
    """The retrain cannot start; ``code`` is the exit code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def _champion(name: str):
    """The ``@champion`` version and its contract."""
    mv = registry.alias_version(name, "champion")
    if mv is None:
        raise Refused(f"{name!r} has no @champion: nothing to retrain", EXIT_NOTHING)
    info = mlflow.models.get_model_info(f"models:/{name}/{mv.version}")
    contract = (info.metadata or {}).get("caretflow")
    if not contract:
        raise Refused(f"{name} v{mv.version} states no contract (input schema)", EXIT_NOTHING)
    return mv, contract


def _base(cfg):
    """The data set's own rows, validated, without identifiers or oracle columns."""
    ds = cfg.dataset
    df = tables.validate(tables.load_raw(ds), ds, ds.task)
    return df.drop(columns=[c for c in [*ds.id_columns, *tables.ORACLE_COLUMNS] if c in df])


def _pipeline_overrides(cfg, snap, manifest_path, champion_version: str) -> list[str]:
    sha = snap.path.with_suffix(".parquet.sha256")
    sha.write_text(f"{sha256_of(snap.path)}  {snap.path.name}\n")
    return ["dataset.source.kind=parquet", f"dataset.source.path={snap.path}",
            f"dataset.source.sha256_file={sha}", "++dataset.split.time_column=event_time",
            f"dataset.split.test_size={cfg.retrain.test_share}", "dataset.split.stratify=false",
            f"retrain.from_version={champion_version}",
            f"retrain.snapshot_digest={snap.digest}", f"retrain.manifest={manifest_path}"]


def build_snapshot(cfg, name: str, mv, contract: dict, window_hours: float, policy: str,
                   url: str) -> tuple[snapshot.Snapshot, dict]:
    """Read, validate, merge and write the snapshot; return it with its manifest."""
    until = time.time()
    records = labelled_records(url, name, window_hours, now=until)
    where = f"{name}, last {window_hours:g} h of {safe_url(url)}"
    opts = cfg.retrain
    age = (until - mv.creation_timestamp / 1000.0) / 3600.0
    snap = snapshot.build(records, _base(cfg), contract, policy, where,
                          min_rows=opts.min_rows, base_age_hours=age,
                          half_life_hours=opts.window.half_life_hours,
                          max_age_hours=opts.window.max_age_hours, seed=cfg.seed)
    snapshot.write(snap, SNAPSHOT_DIR, name)
    manifest = {"model": name, "prediction_db": safe_url(url), "window_hours": window_hours,
                "until": until, "policy": policy, "digest": snap.digest,
                "retrained_from": str(mv.version), "counts": snap.counts,
                "failures": snap.failures, "path": str(snap.path)}
    log.info("%s: snapshot %s: %s; rejected by reason %s", where, snap.path.name, snap.counts,
             snap.failures or "none")
    return snap, manifest


def _versions(cfg, mv) -> list[str]:
    wanted = str(cfg.retrain.versions)
    if wanted == "champion":
        return [mv.tags.get("version_name", "v2_random_forest")]
    return [v.strip() for v in wanted.split(",") if v.strip()]


def retrain(dataset: str, window_hours: float = 720, policy: str = "append",
            prediction_db: str | None = None, overrides: list[str] = (),
            force: bool = False) -> dict:
    """Snapshot, pipeline, decision and alert for one registered model.

    Returns:
        ``outcome`` (the decision), ``new_version``, the run ids and the snapshot counts.

    Raises:
        Refused: no champion, or the snapshot is refused (``code`` is the exit code).
    """
    start = time.perf_counter()
    cfg = compose([f"dataset={dataset}", *overrides])
    name = cfg.registry.name
    tracking.setup(dataset)
    url = prediction_db or default_prediction_db()
    with mlflow.start_run(run_name=f"retrain-{name}") as run:
        mlflow.set_tags({tracking.TAG_STEP: "retrain", tracking.TAG_DATASET: name})
        given = mlflow.get_run(run.info.run_id).data.params  # `mlflow run` logged its own
        params = {"window_hours": window_hours, "policy": policy,
                  "prediction_db": safe_url(url), "promote": cfg.retrain.promote}
        mlflow.log_params({k: v for k, v in params.items() if k not in given})
        try:
            mv, contract = _champion(name)
            mlflow.set_tag("retrained_from", mv.version)
            snap, manifest = build_snapshot(cfg, name, mv, contract, window_hours, policy, url)
        except (Refused, SnapshotError) as exc:
            mlflow.set_tags({"retrain_outcome": "refused", "retrain_refusal": str(exc)[:500]})
            raise exc if isinstance(exc, Refused) else Refused(str(exc), EXIT_REFUSED) from exc
        manifest_path = snap.path.with_suffix(".json")
        manifest_path.write_text(json.dumps(manifest, indent=1))
        mlflow.set_tag("snapshot_digest", snap.digest)
        mlflow.log_metrics({f"rows_{k}": v for k, v in snap.counts.items()})
        mlflow.log_artifact(str(snap.path), "snapshot")
        mlflow.log_dict(snap.failures, "snapshot/failures.json")
        extra = _pipeline_overrides(cfg, snap, manifest_path, str(mv.version))
        runs = run_pipeline(dataset, _versions(cfg, mv), [*overrides, *extra], force)
        result = _report(name, mv, contract["primary_metric"], runs, manifest,
                         time.perf_counter() - start, url)
        mlflow.set_tags({"retrain_outcome": result["outcome"], "new_version": result["new_version"],
                         "preprocess_run_id": runs["preprocess"],
                         "evaluate_run_id": runs["evaluate"]})
        mlflow.log_metrics({**result["before"], **result["after"],
                            "retrain_seconds": result["seconds"]})
        result["run_id"] = run.info.run_id
    return result


def _report(name: str, mv, primary: str, runs: dict, manifest: dict, seconds: float,
            db_url: str | None = None) -> dict:
    """The evaluate run's decision and figures, sent as a ``retrain_finished`` alert.

    The alert is also stored in the prediction database ``db_url`` (``GET /alerts`` lists it).
    """
    data = mlflow.get_run(runs["evaluate"]).data
    decision = data.tags.get("retrain_decision", "kept")
    new = data.tags.get("retrain_candidate", "")
    before = {k: v for k, v in data.metrics.items() if k.startswith("retrain_before_")}
    after = {k: v for k, v in data.metrics.items() if k.startswith("retrain_after_")}
    rows = int(data.metrics.get("retrain_holdout_rows", 0))
    counts = manifest["counts"]
    new_value, old_value = after.get(f"retrain_after_{primary}"), before.get(
        f"retrain_before_{primary}")
    figures = (f" ({primary} {new_value:.4f} vs champion {old_value:.4f} on {rows} holdout "
               "rows)" if new_value is not None and old_value is not None else "")
    verdict = {"champion": "promoted to @champion", "challenger": "now @challenger",
               "kept": "not promoted", "failed_gate": "failed the gate"}.get(decision, decision)
    text = (f"{name} retrained from version {mv.version} on {counts['production']} production "
            f"and {counts['base']} base rows: version {new or 'none'} {verdict}{figures}.")
    details = {"retrained_from": str(mv.version), "new_version": new, "decision": decision,
               "holdout_rows": rows, "metric": primary,
               "before": {k.removeprefix("retrain_before_"): v for k, v in before.items()},
               "after": {k.removeprefix("retrain_after_"): v for k, v in after.items()},
               "counts": counts,
               "failures": manifest["failures"], "snapshot_digest": manifest["digest"],
               "seconds": round(seconds, 1), "runs": runs}
    urls = [u.strip() for u in os.environ.get("ALERT_WEBHOOK_URLS", "").split(",") if u.strip()]
    alerts.send("retrain_finished", name, new or None, decision, text, details, urls,
                key=f"{manifest['digest']}:{runs['evaluate']}", db_url=db_url)
    log.info("%s", text)
    return {"outcome": decision, "new_version": new, "before": before, "after": after,
            "seconds": seconds, "counts": counts, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); returns the exit code."""
    parser = argparse.ArgumentParser(description="retrain a registered model from its log")
    parser.add_argument("--dataset", default="churn")
    parser.add_argument("--window-hours", type=float, default=720.0)
    parser.add_argument("--policy", default="append", choices=snapshot.POLICIES)
    parser.add_argument("--prediction-db", default="", help="default: PREDICTION_DB_URL")
    parser.add_argument("--overrides", default="")
    parser.add_argument("--force", default="false")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    overrides = split_overrides([args.overrides]) if args.overrides else []
    force = args.force.strip().lower() in {"1", "true", "yes"}
    runtime.freeze_imports()
    try:
        retrain(args.dataset, args.window_hours, args.policy, args.prediction_db or None,
                overrides, force)
    except Refused as exc:
        log.error("retrain refused: %s", exc)
        return exc.code
    return 0


if __name__ == "__main__":
    code = main()
    runtime.freeze_before_exit()
    sys.exit(code)
