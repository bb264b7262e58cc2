"""Serving side by side on ``/invocations``: caretflow vs ``mlflow models serve``, same champion.

For each model (``churn``, ``ratings``) all servers run at once with the same worker count
and serve ``<model>@champion`` from the same registry: caretflow with the prediction log on
(and, for churn, off) and ``mlflow models serve``; other churn versions (``--also``: the
XGBoost and the compiled random forest, when neither is the champion) as separate,
labelled caretflow rows. Every server gets byte-identical requests
(the same ``dataframe_split`` body and headers); before a batch size is measured each must
answer it (else the run stops), and whether caretflow answers exactly the predictions of
``mlflow models serve`` is recorded (``answer_checks``). Every cell (batch x concurrency x client x
keep-alive) is measured on each server in turn, interleaved, ``--rounds`` times; each
server's row is its median round by req/s (every round's req/s kept in ``rps_rounds``), so
the ratios come from the same minutes of a noisy machine and one burst of other work moves
them less.

    python -m bench.serve_compare --tracking-uri sqlite:////tmp/caretflow-bench/registry/mlflow.db
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

from bench import compare_ratios, loadgen, machine, servers
from bench.registry import champion

log = logging.getLogger("bench.compare")
RESULTS = Path(__file__).parent / "results"


def answer(req: loadgen.Target) -> list:
    """The predictions one request gets (a failing request is not a benchmark)."""
    resp = requests.post(req.url, data=req.body, timeout=60,
                         headers={"Content-Type": "application/json", **req.headers})
    if resp.status_code != 200:
        raise RuntimeError(f"{req.url} answers {resp.status_code}: {resp.text[:300]}")
    return resp.json()["predictions"]


def same_answers(answers: dict[str, list], reference: str = "mlflow-serve") -> dict:
    """Whether each server serving the champion answers what ``mlflow models serve`` answers."""
    if reference not in answers:
        return {}
    want = np.asarray(answers[reference], dtype=float)
    out = {name: bool(np.allclose(got, want, rtol=0, atol=1e-9))
           for name, got in answers.items() if name.startswith("caretflow-log")}
    for name, same in out.items():
        if not same:
            log.error("%s and %s answer differently on the same rows", name, reference)
    return out


def extra_aliases(tracking_uri: str, model: str, also: list[str]) -> list[str]:
    """The ``model@alias`` entries of ``also`` that exist and are not the champion itself."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client, out = MlflowClient(tracking_uri), []
    champ = champion(tracking_uri, model).get("version")
    for name, _, alias in (a.partition("@") for a in also):
        if name != model:
            continue
        try:
            version = client.get_model_version_by_alias(name, alias).version
        except MlflowException:
            log.info("%s@%s: no such alias, no extra row", name, alias)
            continue
        if version != champ:
            out.append(alias)
    return out


def start(model: str, tracking_uri: str, workdir: Path, opts: argparse.Namespace,
          running: list) -> None:
    """Start the servers of one model (appended to ``running`` as they come up)."""
    wait = opts.start_timeout
    for on in (True, False) if model in opts.log_off_models else (True,):
        running.append(servers.start_caretflow(tracking_uri, workdir, opts.workers, on, wait,
                                               model=model, path="/invocations"))
    for alias in extra_aliases(tracking_uri, model, opts.also):
        running.append(servers.start_caretflow(tracking_uri, workdir, opts.workers, True, wait,
                                               model=model, alias=alias, path="/invocations",
                                               name=f"caretflow-{alias}"))
    if not opts.no_mlflow:
        running.append(servers.start_mlflow(tracking_uri, workdir, opts.workers, wait,
                                            model=model))


def measure(model: str, running: list, opts: argparse.Namespace,
            checks: list) -> list[dict]:
    """Every (batch, concurrency, client, keep-alive) cell on every server, interleaved.

    ``checks`` receives, per batch size, whether caretflow answered as mlflow serve did.
    """
    rows = []
    for batch in opts.batches_of.get(model, opts.batches):
        reqs = {s.name: servers.target(s, model, batch) for s in running}
        same = same_answers({name: answer(req) for name, req in reqs.items()})
        checks.append({"model": model, "batch": batch, "same_as_mlflow": same})
        for s in running:
            loadgen.load(reqs[s.name], max(opts.concurrency), opts.warmup, opts.tools[0])
        for conc in opts.concurrency:
            for tool in opts.tools:
                for keepalive in opts.keepalive:
                    rounds = {s.name: [] for s in running}
                    for _ in range(opts.rounds):
                        for s in running:
                            rounds[s.name].append(loadgen.load(reqs[s.name], conc, opts.seconds,
                                                               tool, keepalive=keepalive))
                    for name, runs in rounds.items():
                        res = loadgen.median_round(runs)
                        res.update(model=model, server=name, batch=batch,
                                   rows_per_s=round(res["rps"] * batch, 1))
                        log.info("%-7s %-18s batch %4d c=%d %-6s ka=%-3s %8.1f req/s  p50 %7.2f "
                                 "p99 %7.2f ms  err %d  (rounds %s)", model, name, batch, conc,
                                 tool, "on" if keepalive else "off", res["rps"],
                                 _ms(res["p50_ms"]), _ms(res["p99_ms"]), res["errors"],
                                 res["rps_rounds"])
                        rows.append(res)
    return rows


def _ms(value: float | None) -> float:
    return float("nan") if value is None else value


def run(tracking_uri: str, workdir: Path, opts: argparse.Namespace) -> dict:
    """Start, measure and stop the servers of each model; return the result document."""
    rows, champions, checks, started = [], {}, [], machine.facts()
    for model in opts.models:
        champions[model] = champion(tracking_uri, model, load=True)
        running: list[servers.Server] = []
        try:
            start(model, tracking_uri, workdir, opts, running)
            rows += measure(model, running, opts, checks)
        finally:
            for s in running:
                s.stop()
    return {"measured_at": started["at"], "machine": started, "load_after": machine.load(),
            "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "champions": champions, "workers": opts.workers, "tools": opts.tools,
            "seconds_per_cell": opts.seconds, "rounds": opts.rounds, "answer_checks": checks,
            "results": rows,
            **compare_ratios.summarise(rows)}


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--models", default="churn,ratings")
    parser.add_argument("--batches", default="1,1000")
    parser.add_argument("--batches-of", action="append", default=["ratings=1"],
                        help="MODEL=B1,B2: other batch sizes for one model (ratings=1)")
    parser.add_argument("--log-off-models", default="churn",
                        help="models also served with PREDICTION_LOG=0")
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--tools", "--tool", default="wrk,ab",
                        help="load clients (python: no binaries)")
    parser.add_argument("--keepalive", default="on,off")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="per cell, server and round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds per cell; each server's median round is kept")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--also", default="churn@v4_xgboost,churn@v3_rf_tuned",
                        help="other versions served as separate, labelled rows ('' for none)")
    parser.add_argument("--start-timeout", type=float, default=300.0,
                        help="seconds a server may take to become ready")
    parser.add_argument("--no-mlflow", action="store_true", help="caretflow only (smoke runs)")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve_compare.json")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    opts.models = opts.models.split(",")
    opts.batches = [int(b) for b in opts.batches.split(",")]
    opts.batches_of = {m: [int(b) for b in bs.split(",")]
                       for m, bs in (spec.split("=") for spec in opts.batches_of)}
    opts.log_off_models = opts.log_off_models.split(",")
    opts.also = [a for a in opts.also.split(",") if a]
    opts.concurrency = [int(c) for c in opts.concurrency.split(",")]
    opts.tools = [loadgen.resolve(t) for t in opts.tools.split(",")]
    opts.keepalive = [k == "on" for k in opts.keepalive.split(",")]
    with tempfile.TemporaryDirectory(prefix="caretflow-serve-") as tmp:
        doc = run(opts.tracking_uri, Path(tmp), opts)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(doc, indent=2))
    log.info("fair client setting (mlflow serve's best at batch 1, c=8): %s", doc["headline"])
    for r in doc["ratios"]:
        log.info("%-7s caretflow/mlflow batch %4d c=%d %-6s ka=%-3s req/s x%s  p50 x%s",
                 r["model"], r["batch"], r["connections"], r["tool"],
                 "on" if r["keepalive"] else "off", r["rps_ratio"], r["p50_ratio"])
    log.info("wrote %s", opts.out)


if __name__ == "__main__":
    main()
