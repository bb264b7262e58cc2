"""Fault scenarios against real processes, each returning its figures.

    python -m bench.faults_run sigkill --seconds 30 --kill-after 5 --concurrency 4
    python -m bench.faults_run mlflow_outage --outage 30
    python -m bench.faults_run registry_start --outage 20
    python -m bench.faults_run load --seconds 60
    python -m bench.faults_run registry_start:outage=3 scaleout mlflow_outage:outage=8 \
        --prediction-db postgresql://postgres@127.0.0.1/x --out-dir /tmp/faults

Each reads the registry at ``--tracking-uri`` (default: the repo's SQLite store, copied to
a temporary directory first) and writes ``<--out-dir>/<scenario>.json`` (default
``bench/results/reliability``; ``--out`` names the file of a single scenario). Several
scenarios run in the order given; those needing a tracking server (``registry_start``,
``scaleout``, ``mlflow_outage``) share one published ``mlflow server``. ``name:key=value,...``
sets a parameter for that scenario only; the flags set it for every scenario taking it.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import logging
import os
import signal
import tempfile
import time
import traceback
from pathlib import Path

from bench import load_mixed
from bench.faults_env import CLIENT_KEY, Gunicorn, published, sqlite_db
from bench.faults_scaleout import scaleout
from bench.faults_tracking import mlflow_outage, registry_start
from caretflow.launch import ROOT, copy_sqlite_store, wait_until

log = logging.getLogger("bench.faults_run")
RESULTS = ROOT / "bench" / "results" / "reliability"


def load(registry_uri: str, workdir: Path, seconds: float = 60, concurrency: int = 4,
         workers: int = 2) -> dict:
    """Mixed /predict + /feedback for ``seconds``; exact rows afterwards."""
    db = sqlite_db(workdir)
    server = Gunicorn(workdir / "gunicorn", registry_uri, db, workers=workers).start()
    try:
        tally = load_mixed.run([server.url], CLIENT_KEY, seconds, concurrency)
    finally:
        server.stop()
    return load_mixed.summary(tally, seconds, load_mixed.stored(db, tally.tag))


def sigkill(registry_uri: str, workdir: Path, seconds: float = 20, kill_after: float = 5,
            concurrency: int = 4) -> dict:
    """SIGKILL one of two workers under load; gunicorn replaces it; no feedback is lost."""
    db = sqlite_db(workdir)
    server = Gunicorn(workdir / "gunicorn", registry_uri, db, workers=2).start()
    wait_until(lambda: len(server.worker_pids()) == 2, 60)
    fault: dict = {}

    def kill(_tally):
        time.sleep(kill_after)
        before = server.worker_pids()
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        back = wait_until(lambda: len(set(server.worker_pids()) - set(before)) == 1
                          and len(server.worker_pids()) == 2, 60, 0.05)
        replaced = time.monotonic() - killed_at if back else None
        ready = wait_until(server.all_ready, 60, 0.1)
        fault.update(killed_pid=victim, worker_replaced_s=round(replaced or -1, 2),
                     serving_again_s=round(time.monotonic() - killed_at, 2) if ready else None)

    try:
        tally = load_mixed.run([server.url], CLIENT_KEY, seconds, concurrency, during=kill)
    finally:
        server.stop()
    return {**load_mixed.summary(tally, seconds, load_mixed.stored(db, tally.tag)), **fault}


SCENARIOS = {"load": load, "sigkill": sigkill, "mlflow_outage": mlflow_outage,
             "registry_start": registry_start, "scaleout": scaleout}
ON_REGISTRY_FILE = ("load", "sigkill")  # the others run against a published mlflow server


def _plan(specs: list[str], flags: dict) -> list[tuple[str, dict]]:
    """``name[:key=value,...]`` -> (name, keyword arguments the scenario takes)."""
    plan = []
    for spec in specs:
        name, _, opts = spec.partition(":")
        if name not in SCENARIOS:
            raise SystemExit(f"unknown scenario {name!r} (one of {', '.join(sorted(SCENARIOS))})")
        params = inspect.signature(SCENARIOS[name]).parameters
        kwargs = {k: v for k, v in flags.items() if v is not None and k in params}
        for key, _, value in (o.partition("=") for o in opts.split(",") if o):
            if key not in params:
                raise SystemExit(f"{name} takes no parameter {key!r}")
            cast = {"int": int, "float": float}.get(str(params[key].annotation), str)
            kwargs[key] = cast(value)
        plan.append((name, kwargs))
    return plan


def run_all(plan: list[tuple[str, dict]], tracking_uri: str, workdir: Path, write,
            mlflow_backend: str | None = None) -> bool:
    """Run the scenarios in order, those on a tracking server sharing one.

    Args:
        plan: (scenario, keyword arguments) pairs, see ``_plan``.
        tracking_uri: the registry to serve (a SQLite store is copied into ``workdir`` first).
        workdir: scratch directory.
        write: called with (scenario, figures) as soon as each scenario is done; a scenario
            that raised has figures ``{"scenario", "measured_at", "error"}`` and the next runs.
        mlflow_backend: backend store of the published ``mlflow server`` (default SQLite).

    Returns:
        True when no scenario raised.
    """
    uri = tracking_uri
    if uri.startswith("sqlite:///"):
        uri = copy_sqlite_store(uri, workdir / "registry")
    ok = True
    with contextlib.ExitStack() as stack:
        tracking = None
        for i, (name, kwargs) in enumerate(plan):
            result = {"scenario": name, "measured_at": time.strftime("%Y-%m-%d %H:%M")}
            step = workdir / f"{i}-{name}"
            step.mkdir()
            try:
                if name in ON_REGISTRY_FILE:
                    result.update(SCENARIOS[name](uri, step, **kwargs))
                else:
                    tracking = tracking or stack.enter_context(
                        published(uri, workdir, mlflow_backend))
                    result["mlflow_backend"] = tracking.backend.split(":", 1)[0]
                    result.update(SCENARIOS[name](tracking, step, **kwargs))
            except Exception:  # noqa: BLE001 - reported in the result; the next scenario runs
                log.exception("scenario %s failed", name)
                result["error"] = traceback.format_exc()
                ok = False
            log.info(json.dumps(result, indent=1))
            write(name, result)
    return ok


def main(argv: list[str] | None = None) -> None:
    """CLI: run the scenarios given, print and save their figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="+", metavar="scenario[:key=value,...]",
                        help=", ".join(sorted(SCENARIOS)))
    parser.add_argument("--tracking-uri", default=os.environ.get(
        "MLFLOW_TRACKING_URI", f"sqlite:///{ROOT / 'mlflow.db'}"))
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--outage", type=float)
    parser.add_argument("--kill-after", type=float)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--mlflow-backend", help="backend store of the published mlflow "
                        "server (e.g. a fresh PostgreSQL database); default SQLite")
    parser.add_argument("--prediction-db", help="scaleout: the shared prediction database")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379",
                        help="scaleout: the shared rate-limit storage")
    parser.add_argument("--out", type=Path, help="result file (a single scenario only)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    plan = _plan(args.scenarios, {
        "seconds": args.seconds, "outage": args.outage, "kill_after": args.kill_after,
        "concurrency": args.concurrency, "prediction_db": args.prediction_db,
        "redis_uri": args.redis})
    if args.out and len(plan) > 1:
        parser.error("--out names one result file: use --out-dir for several scenarios")
    if any(name == "scaleout" for name, _ in plan) and not args.prediction_db:
        parser.error("scaleout needs --prediction-db")

    def write(name: str, result: dict) -> None:
        out = args.out or args.out_dir / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")

    with tempfile.TemporaryDirectory(prefix="caretflow-faults-") as tmp:
        ok = run_all(plan, args.tracking_uri, Path(tmp), write, args.mlflow_backend)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
