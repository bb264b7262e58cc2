"""The drifting churn scenario, end to end: a champion degrades, the watcher retrains it.

Real processes on loopback: an ``mlflow server``, a quick-profile champion trained through
``mlflow run . -e main`` (``v2_random_forest``, ``profile.max_rows`` rows, so most scenario
rows are unseen by it), gunicorn with 2 workers and the watcher (``python -m steps.watch
--once``, consecutive=2). The scenario (``caretflow.data.drift_scenario.churn_scenario``)
replays traffic with feedback; after the change point the champion degrades; the watcher
starts ``retrain`` (``--policy``, default replace; ``retrain.promote=direct``); the retrained
champion and the old one then score the same fresh post-drift records, with feedback.

Prints: live ROC AUC / F1 of both on the fresh records (the server's ``/model_health``), the
retrain's holdout before/after, time from the first degraded check to the alias move and to
every worker serving it, the retrain time. Writes ``bench/results/retrain_scenario.json`` and
``docs/img/retrain_scenario.png`` (rolling live ROC AUC over the scenario).

Usage: ``python -m bench.retrain_scenario [--seed 0] [--max-rows 2000] [--policy replace]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import shutil
import time

import requests
from mlflow.tracking import MlflowClient

from bench.retrain_plot import rolling_plot
from caretflow.data.drift_scenario import churn_scenario
from caretflow.data.replay import replay
from caretflow.launch import ROOT, Gunicorn, MlflowServer
from caretflow.pipeline_run import mlflow_run_main
from caretflow.watcher.observe import follow, watch_process

log = logging.getLogger("bench.retrain_scenario")
RESULTS = ROOT / "bench" / "results"
WORK = RESULTS / "tmp" / "retrain_scenario"
BATCH = 100


def _health(server, key: str, **params) -> dict:
    return requests.get(f"{server.url}/model_health", params=params or None,
                        headers={"X-API-Key": key}, timeout=30).json()


def _entry(body: dict, version: str) -> dict:
    return next(v for v in body["versions"] if v["version"] == version)


def _replay_until_degraded(server, key: str, part, old: str) -> tuple[list, float | None]:
    """Replay ``part`` batch by batch; the answers and the first time /model_health said so."""
    answers, degraded_at = [], None
    for start in range(0, len(part), BATCH):
        answers += replay(server.url, {"X-API-Key": key}, part[start:start + BATCH],
                          batch=BATCH)
        if degraded_at is None and _entry(_health(server, key), old)["status"] == "degraded":
            degraded_at = time.time()
    return answers, degraded_at


def _retrain_run(client: MlflowClient, new: str):
    mv = client.get_model_version("churn", new)
    exp = client.get_run(mv.tags["preprocess_run_id"]).info.experiment_id
    return client.search_runs([exp], "tags.`caretflow.step` = 'retrain'",
                              order_by=["attributes.start_time DESC"])[0]


def run(seed: int, max_rows: int, policy: str) -> dict:
    """The whole scenario; the figures."""
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    key = secrets.token_hex(16)
    tracking = MlflowServer(WORK / "mlflow").start(180)
    server = None
    try:
        proc, took = mlflow_run_main(tracking.url, "churn", f"profile=quick "
                                     f"profile.max_rows={max_rows}", versions="v2_random_forest")
        if proc.returncode:
            raise RuntimeError(f"training the champion failed:\n{proc.stderr[-3000:]}")
        log.info("champion trained in %.0f s", took)
        server = Gunicorn(WORK, tracking.url, workers=2, API_KEYS=key, OBSERVE_SECONDS=1,
                          ALIAS_REFRESH_SECONDS=1).start(180)
        old = str(server.health()["default_version"])
        scenario = churn_scenario(seed=seed)
        served, degraded_at = _replay_until_degraded(server, key, scenario.replay, old)
        if degraded_at is None:
            raise RuntimeError(f"the champion never degraded: {_health(server, key)}")
        degraded = _entry(_health(server, key), old)
        outputs, switch = [], None
        for _ in range(2):  # consecutive=2: the first check waits, the second retrains
            watcher = watch_process("churn", server.url, tracking.url, str(WORK / "watch"), [
                "--prediction-db", server.env["PREDICTION_DB_URL"], "watch.consecutive=2",
                "watch.min_new_labels=1000", "watch.retrain.window_hours=24",
                f"watch.retrain.policy={policy}",
                "watch.retrain.overrides='profile=quick retrain.promote=direct'"], API_KEYS=key)
            switch = follow(watcher, tracking.url, server.url, "churn", old)
            outputs.append(watcher.communicate()[0])
        if switch.new_version is None:
            raise RuntimeError("no new champion:\n" + "\n".join(outputs)[-4000:])
        new, client = switch.new_version, MlflowClient(tracking.url)
        fresh_from = time.time()
        as_old = replay(server.url, {"X-API-Key": key}, scenario.fresh, version_name=old)
        as_new = replay(server.url, {"X-API-Key": key}, scenario.fresh)
        hours = (time.time() - fresh_from + 5) / 3600
        live = _health(server, key, window_hours=hours)
        retrain = _retrain_run(client, new)
        return {
            "scenario": scenario.description, "seed": seed, "champion_max_rows": max_rows,
            "policy": policy,
            "records": {"before_change": scenario.change_at,
                        "after_change": len(scenario.replay) - scenario.change_at,
                        "fresh": len(scenario.fresh)},
            "old_version": old, "new_version": new,
            "old_at_degradation": degraded["live_metrics"],
            "fresh_post_drift": {v: _entry(live, v)["live_metrics"] for v in (old, new)},
            "holdout": {k: v for k, v in retrain.data.metrics.items()
                        if k.startswith(("retrain_before_", "retrain_after_", "rows_",
                                         "retrain_holdout"))},
            "retrain_outcome": retrain.data.tags.get("retrain_outcome"),
            "seconds_degraded_to_alias_move": round(switch.moved_at - degraded_at, 1),
            "seconds_alias_move_to_all_workers": round(max(switch.workers.values()), 2)
            if len(switch.workers) == 2 else None,
            "retrain_seconds": retrain.data.metrics.get("retrain_seconds"),
            "watcher_output": [o.strip().splitlines()[-3:] for o in outputs],
            "_plot": {"served": served, "as_old": as_old, "as_new": as_new,
                      "truths": scenario.replay.truths, "fresh_truths": scenario.fresh.truths,
                      "change_at": scenario.change_at},
        }
    finally:
        if server is not None:
            server.stop()
        tracking.stop()


def main(argv=None) -> None:
    """Run, print the figures, write the JSON and the plot."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows", type=int, default=2000)
    parser.add_argument("--policy", default="replace", choices=["append", "window", "replace"])
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = run(args.seed, args.max_rows, args.policy)
    plot = out.pop("_plot")
    out["run"] = started
    png = ROOT / "docs" / "img" / "retrain_scenario.png"
    rolling_plot(plot, out, png)
    (RESULTS / "retrain_scenario.json").write_text(json.dumps(out, indent=1))
    old, new = out["old_version"], out["new_version"]
    fresh = out["fresh_post_drift"]
    print(f"run {started}: {out['scenario']}")
    print(f"old champion v{old} at degradation: live_roc_auc "
          f"{out['old_at_degradation']['live_roc_auc']:.4f}")
    for name, v in (("old champion", old), ("retrained", new)):
        m = fresh[v]
        print(f"{name} v{v} on {out['records']['fresh']} fresh post-drift records: "
              f"live_roc_auc {m['live_roc_auc']:.4f}, live_f1 {m['live_f1']:.4f}")
    print(f"retrain holdout: {json.dumps(out['holdout'], sort_keys=True)}")
    print(f"retrain outcome {out['retrain_outcome']}, retrain_seconds {out['retrain_seconds']}")
    print(f"first degraded check -> @champion moved: {out['seconds_degraded_to_alias_move']} s;"
          f" alias move -> both workers serve it: {out['seconds_alias_move_to_all_workers']} s")
    print(f"wrote {RESULTS / 'retrain_scenario.json'} and {png}")


if __name__ == "__main__":
    main()
