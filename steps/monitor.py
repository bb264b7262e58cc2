"""Entry point ``monitor``: one model over one window of its prediction log, into MLflow.

``python -m steps.monitor --model churn --window-hours 24 [--prediction-db URL]``. For each
version that scored records in the window: input drift per feature (PSI and a test), output
drift against the version's held-out test split, live metrics with 95 % intervals where
labels arrived, estimated metrics (CBPE) where they did not, the A/B verdict and the
server's alerts; for the model, the records rejected at validation by field and reason.
Everything goes into one MLflow run per model and window length (tag ``caretflow.monitor=1``,
experiment ``caretflow-<model>``), reused by every later window: metrics are stepped by the
window's end in epoch minutes, so the MLflow UI draws them over time;
``monitoring/report.html`` and ``monitoring/*.png`` hold the latest window.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from caretflow import plots, registry, runtime, tracking
from caretflow.inference.contract import check
from caretflow.monitoring import analysis, figures, profile, quality, report
from caretflow.monitoring.analysis import finite
from caretflow.monitoring.log_reader import LogReader
from caretflow.paths import ROOT

log = logging.getLogger("caretflow.monitor")
TAG = "caretflow.monitor"
DAY = 86400.0


def default_prediction_db() -> str:
    """``PREDICTION_DB_URL``, else the server's default (``predictions.db`` in the repo)."""
    return os.environ.get("PREDICTION_DB_URL") or f"sqlite:///{ROOT / 'predictions.db'}"


def _splits(mv) -> tuple:
    """(train, test) splits of the version's preprocess run; None for one it cannot read."""
    from steps.preprocess import load_split

    out = []
    for name in ("train", "test"):
        try:
            out.append(load_split(mv.tags["preprocess_run_id"], name))
        except Exception as exc:  # noqa: BLE001 - no reference: the report says so
            log.warning("version %s: no %s split (%s)", mv.version, name, exc)
            out.append(None)
    return tuple(out)


def drift_reference(mv, model) -> tuple[dict, str]:
    """The training reference drift is measured and drawn against, and where it came from.

    The preprocess run's profile (``data/reference.json``); the model's own copy (the same
    function over the same split) only for a preprocess run that logged none.
    """
    try:
        ref = profile.load_reference(mv.tags["preprocess_run_id"])
    except Exception as exc:  # noqa: BLE001 - an older preprocess run: the model's copy
        log.warning("version %s: no profile reference (%s); using the model's", mv.version, exc)
        return model.reference or {}, "the model's training reference"
    if model.reference and ref != model.reference:
        log.warning("version %s: the profile's reference differs from the model's; "
                    "drift uses the profile's", mv.version)
    return ref, f"the data profile of preprocess run {mv.tags['preprocess_run_id']}"


def _output_reference(model, contract, test, reader, name, version, since):
    """What the served outputs are compared with: the held-out test split, else day one."""
    column = "probability" if contract["task"] == "classification" else "prediction"
    if test is not None:
        details = model.predict_details(test[contract["features"]])
        return "the held-out test split at training", details[column]
    first = reader.first_seen(name, version)
    if first is not None and first + DAY <= since:
        day = reader.scored(name, version, first, first + DAY)
        return "the version's first day of traffic", day[f"out_{column}"].to_numpy(float)
    return None


def _arm_versions(labels) -> tuple[str | None, str | None]:
    def mode(arm):
        v = labels.loc[labels["arm"] == arm, "model_version"] if len(labels) else []
        return str(v.mode().iloc[0]) if len(v) else None
    return mode("champion"), mode("challenger")


def _version(reader, client, name, version, since, until, labels, out: Path) -> dict:
    mv = client.get_model_version(name, version)
    model = registry.load_model(f"models:/{name}/{version}")
    contract = check(model.contract)
    train, test = _splits(mv)
    scored = reader.scored(name, version, since, until)
    own = labels[labels["model_version"] == version] if len(labels) else labels
    ref = _output_reference(model, contract, test, reader, name, version, since)
    reference, source = drift_reference(mv, model)
    rep = analysis.version_report(contract, reference, scored, own, since, until, train, ref)
    rep["reference_source"] = source
    figs = {"over_time": figures.save(figures.metrics_over_time_figure(
        rep["over_time"], analysis.LIVE[contract["task"]], version),
        out / f"metrics_v{version}.png")}
    if rep["drift"]:
        figs["drift"] = figures.save(figures.drift_figure(reference, scored, rep["drift"],
                                                          version), out / f"drift_v{version}.png")
    if ref is not None and len(scored):
        col = "out_probability" if contract["task"] == "classification" else "out_prediction"
        figs["predictions"] = figures.save(figures.prediction_figure(
            ref[1], scored[col], ref[0], version), out / f"predictions_v{version}.png")
    if contract["task"] == "classification" and len(own) >= 2:
        figs["reliability"] = figures.save(plots.reliability_figure(
            own["true_value"].astype(int), own["probability"], title=f"v{version} live"),
            out / f"reliability_v{version}.png")
    return {**rep, "contract": contract, "figures": figs}


def analyse(name: str, window_hours: float, prediction_db: str, end: float | None,
            out: Path) -> dict:
    """The window's report (figures written into ``out``), without logging it."""
    until = time.time() if end is None else float(end)
    since = until - window_hours * 3600
    reader, client = LogReader(prediction_db), MlflowClient()
    if not reader.has_log():
        raise SystemExit(f"{prediction_db} holds no prediction log")
    aliases: dict[str, list[str]] = {}
    for alias, v in client.get_registered_model(name).aliases.items():
        aliases.setdefault(str(v), []).append(alias)
    labels = reader.labelled(name, since, until)
    served = reader.served(name, since, until)
    versions = {}
    for version in sorted(served, key=int):
        versions[version] = _version(reader, client, name, version, since, until, labels, out)
        versions[version].update(predictions=served[version],
                                 aliases=sorted(aliases.get(version, [])))
    contract = next(iter(versions.values()))["contract"] if versions else None
    rep = {"model": name, "window_hours": window_hours, "since": since, "until": until,
           "task": contract["task"] if contract else "unknown",
           "primary": contract["primary_metric"] if contract else "", "versions": versions,
           "alerts": reader.alerts(name, since, until), "figures": {}, "ab": None,
           "ab_note": "No labelled A/B traffic (arms champion and challenger) in the window."}
    rep["quality"] = quality.summary(reader.rejected(name, since, until),
                                     list(contract["features"]) if contract else [])
    if rep["quality"] and rep["quality"]["by_reason"]:
        rep["figures"]["quality"] = figures.save(figures.quality_figure(rep["quality"]),
                                                 out / "quality.png")
    champion, challenger = _arm_versions(labels)
    if contract and champion and challenger:
        rep["ab"] = analysis.ab_verdict(contract, labels, champion, challenger)
        if rep["ab"] and rep["ab"]["champion"]["metrics"] and rep["ab"]["challenger"]["metrics"]:
            rep["figures"]["ab"] = figures.save(figures.ab_figure(rep["ab"]), out / "ab.png")
    return rep


def _key(*parts: str) -> str:
    return re.sub(r"[^\w\-./ ]", "_", ".".join(parts))


def metrics_of(rep: dict) -> dict[str, float]:
    """The run's metrics of one window (``v<version>.…``, ``ab.…``, ``quality.…``)."""
    out: dict[str, float] = {}
    for v, r in rep["versions"].items():
        p = f"v{v}"
        out[_key(p, "records")], out[_key(p, "labels")] = r["predictions"], r["labels"]
        out[_key(p, "drift_flagged")] = sum(d["flagged"] for d in r["drift"].values())
        for feature, d in r["drift"].items():
            out[_key(p, "psi", feature)] = d["psi"]
        if r["prediction_drift"]:
            out[_key(p, "prediction_psi")] = r["prediction_drift"]["psi"]
        for m, x in r["live"].items():
            for k, val in x.items():
                out[_key(p, f"live_{m}" + ("" if k == "value" else f"_{k}"))] = val
        for m, val in r["estimated"].items():
            out[_key(p, f"estimated_{m}")] = val
        for m, val in r["estimated_labelled"].items():
            out[_key(p, f"estimated_labelled_{m}")] = val
    ab = rep.get("ab")
    if ab:
        out["ab.promote_challenger"] = float(ab["decision"] == "promote_challenger")
        out["ab.keep_champion"] = float(ab["decision"] == "keep_champion")
        for k in ("value", "ci_low", "ci_high", "p_value"):
            if ab["difference"]:
                out[f"ab.difference_{k}"] = ab["difference"][k]
    out.update({_key(k): v for k, v in quality.metrics(rep.get("quality")).items()})
    return {k: float(v) for k, v in out.items() if finite(v)}


def _run_id(name: str, window_hours: float, experiment_id: str) -> str | None:
    runs = MlflowClient().search_runs(
        [experiment_id], filter_string=f"tags.`{TAG}` = '1' and tags.`{TAG}.model` = '{name}' "
        f"and tags.`{TAG}.window_hours` = '{window_hours:g}'", max_results=1)
    return runs[0].info.run_id if runs else None


def monitor(model: str, window_hours: float = 24, prediction_db: str | None = None,
            end: float | None = None) -> dict:
    """Analyse the window ending at ``end`` (default now) and log it; return run id and report."""
    mlflow.set_tracking_uri(tracking.tracking_uri())
    experiment_id = tracking.setup(model)
    prediction_db = prediction_db or default_prediction_db()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "monitoring"
        out.mkdir()
        rep = analyse(model, window_hours, prediction_db, end, out)
        (out / "report.html").write_text(report.render(rep), encoding="utf-8")
        step, ts = int(rep["until"] // 60), int(rep["until"] * 1000)
        launcher = os.environ.get("MLFLOW_RUN_ID")
        with tracking.outside_env_run(), mlflow.start_run(
                run_id=_run_id(model, window_hours, experiment_id), experiment_id=experiment_id,
                run_name=f"monitor-{model}-{window_hours:g}h") as run:
            mlflow.set_tags({TAG: "1", f"{TAG}.model": model,
                             f"{TAG}.window_hours": f"{window_hours:g}",
                             tracking.TAG_STEP: "monitor", tracking.TAG_DATASET: model,
                             f"{TAG}.last_window_end": str(int(rep["until"]))})
            metrics = metrics_of(rep)
            MlflowClient().log_batch(run.info.run_id, metrics=[
                Metric(k, v, ts, step) for k, v in sorted(metrics.items())])
            mlflow.log_artifacts(str(out), "monitoring")
        if launcher:  # under `mlflow run`: point the launcher's run at the monitoring run
            MlflowClient().set_tag(launcher, f"{TAG}.run_id", run.info.run_id)
    log.info("%s: %d version(s) over %gh -> run %s (%d metrics at step %d)", model,
             len(rep["versions"]), window_hours, run.info.run_id, len(metrics), step)
    return {"run_id": run.info.run_id, "step": step, "metrics": metrics, "report": rep}


def main(argv=None) -> None:
    """CLI: ``python -m steps.monitor --model churn [--window-hours 24] [--prediction-db URL]``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description="Monitor a registered model's window.")
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--window-hours", type=float, default=24.0)
    parser.add_argument("--prediction-db", default="", help="default: PREDICTION_DB_URL")
    args = parser.parse_args(argv)
    monitor(args.model, args.window_hours, args.prediction_db or None)


if __name__ == "__main__":
    runtime.freeze_imports()
    main()
    runtime.freeze_before_exit()
