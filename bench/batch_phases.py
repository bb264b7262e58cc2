"""Where the time of one large ``/predict`` batch goes, phase by phase, in-process.

Builds the real app (``create_app``) on the benchmark registry with a private SQLite
prediction log and times each stage of a ``{"records": [...]}`` request separately, then
the whole request through Flask's test client (no HTTP), with the log on and off, and the
same rows as one ``dataframe_split`` ``/invocations`` request (what ``bench.serve_compare``
sends).

    python -m bench.batch_phases --tracking-uri sqlite:////tmp/caretflow-bench/reg/mlflow.db
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import orjson

from bench import payloads, servers
from bench.serve_floor import time_call

log = logging.getLogger("bench.phases")
RESULTS = Path(__file__).parent / "results"


def in_process_app(tracking_uri: str, workdir: Path, prediction_log: bool, **settings):
    """The real app (``create_app``) on the bench registry, logging to ``workdir``."""
    from app import create_app

    return create_app({"API_KEYS": servers.BENCH_KEY, "ADMIN_API_KEYS": "bench-admin",
                       "MLFLOW_TRACKING_URI": tracking_uri, "PREDICTION_LOG": prediction_log,
                       "PREDICTION_DB_URL": f"sqlite:///{workdir / 'predictions.db'}",
                       **settings})


def phases(tracking_uri: str, workdir: Path, n: int, seconds: float) -> list[dict]:
    """p50 of every stage of one ``n``-record request (and of the whole request)."""
    from app import scoring
    from app.prediction_log import db
    from app.routes.predict import _checker
    from caretflow.fastpath import accelerate
    from caretflow.registry import load_model

    records = payloads.records(n, seed=n)
    body = orjson.dumps({"records": records})
    out = []

    def timed(name: str, fn) -> None:
        out.append({"phase": name, **time_call(fn, seconds)})
        log.info("%-34s p50 %8.3f ms", name, out[-1]["p50_ms"])

    app = in_process_app(tracking_uri, workdir, prediction_log=True)
    st = app.extensions["caretflow"]
    try:
        with app.app_context():
            parsed = orjson.loads(body)
            batch = _checker(st).check(parsed)
            names = st.requests.features
            arrays = {k: batch.array(k) for k in names}
            served = st.store.default
            plain = load_model(f"models:/{st.store.name}/{served.version}")
            timed("parse JSON (orjson)", lambda: orjson.loads(body))
            timed("validate (column-wise)", lambda: _checker(st).check(parsed))
            timed("columns as arrays", lambda: {k: batch.array(k) for k in names})
            details = served.model.predict_details(arrays)
            values = {k: np.asarray(v).tolist() for k, v in details.items()}
            inputs = {k: batch.columns[k] for k in names}
            timed("log row (columns as JSON)", lambda: scoring.group_row(
                st, served, "default", db.new_request_id(), None, inputs, values))
            for threads in sorted({1, st.store.threads}):
                model = accelerate(plain, threads)
                timed(f"model ({threads} thread{'s' * (threads > 1)})",
                      lambda m=model: m.predict_details(arrays))
            row = scoring.group_row(st, served, "default", "", None, inputs, values)
            timed("log write (one transaction)", lambda: db.write(
                st.engine, [{**row, "request_id": db.new_request_id()}], []))
            ids = db.prediction_ids(db.new_request_id(), range(n))
            timed("prediction ids", lambda: db.prediction_ids(db.new_request_id(), range(n)))
            out_lists = scoring._score(served, "default", arrays)
            timed("answers (one object per record)",
                  lambda: scoring._answers(served, "default", ids, out_lists))
            answers = scoring.predict(st, batch)
            timed("answer JSON (orjson)", lambda: orjson.dumps({"predictions": answers}))
        client = app.test_client()
        headers = {"X-API-Key": servers.BENCH_KEY, "Content-Type": "application/json"}
        timed("whole request, log on (no HTTP)",
              lambda: client.post("/predict", data=body, headers=headers))
        split = payloads.dataframe_split(records)
        timed("whole /invocations request, log on (no HTTP)",
              lambda: client.post("/invocations", data=split, headers=headers))
    finally:
        st.stop()
    off = in_process_app(tracking_uri, workdir / "off", prediction_log=False)
    try:
        client = off.test_client()
        timed("whole request, log off (no HTTP)",
              lambda: client.post("/predict", data=body, headers=headers))
    finally:
        off.extensions["caretflow"].stop()
    return out


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=2.0, help="timing budget per phase")
    parser.add_argument("--out", type=Path, default=RESULTS / "batch_phases.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "off").mkdir()
        rows = phases(args.tracking_uri, Path(tmp), args.rows, args.seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": args.rows, "phases": rows}, indent=2))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
