"""What one prediction-log write costs when several workers write, per SQLite page size.

Each gunicorn worker writes its requests' groups through ``app.prediction_log.db.write``.
When another process wrote since, SQLite drops its page cache and reads the pages of the
write again, so a write costs more with two writers than with one, and the cost follows
the page size. Here 1 and 2 writer processes (2 is the server's default) write one-record
groups of real rows into a new database of each page size, with a passive checkpoint
every second (the server's background checkpoint); each reports its CPU time per write.
One writer also writes the group of a ``--batch``-record request (its inputs and outputs
as JSON, in overflow pages), timed per write.

    python -m bench.log_writers [--seconds 3] [--page-sizes 4096,1024] [--batch 1000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import multiprocessing
import sqlite3
import tempfile
import time
from pathlib import Path

import orjson

from bench import machine, payloads
from bench.serve_floor import time_call

log = logging.getLogger("bench.log_writers")
RESULTS = Path(__file__).parent / "results"


def _group(inputs: str, outputs: str, size: int = 1) -> dict:
    from app.prediction_log import db

    return {"request_id": db.new_request_id(), "arm": "default", "created_at": time.time(),
            "model_name": "churn", "model_version": "1", "version_name": "bench",
            "size": size, "positions": None, "routing": None, "inputs": inputs,
            "outputs": outputs}


def new_database(path: Path, page: int) -> str:
    """A new WAL database file of ``page``-byte pages (the log's engine keeps its page size)."""
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA page_size={page}")
    conn.execute("PRAGMA journal_mode=WAL")  # the first write: the file takes the size
    conn.close()
    return f"sqlite:///{path}"


def _columns_json(n: int, seed: int) -> tuple[str, str]:
    """A group's inputs (``n`` real rows as columns) and classifier outputs, as JSON."""
    rows = payloads.records(n, seed=seed)
    inputs = orjson.dumps({k: [r[k] for r in rows] for k in rows[0]}).decode()
    return inputs, orjson.dumps({"prediction": [1] * n, "probability": [0.71] * n}).decode()


def large_group(page: int, n: int, writes: int, workdir: Path) -> dict:
    """p50 wall time of one writer's ``n``-record group writes into a new database."""
    from app.prediction_log import db

    inputs, outputs = _columns_json(n, seed=n)
    engine = db.make_engine(new_database(workdir / f"large-{page}.db", page),
                            autocheckpoint=False)
    calls = itertools.count(1)

    def write() -> None:
        db.write(engine, [_group(inputs, outputs, n)], [])
        if next(calls) % 50 == 0:  # the WAL copied back, as the background checkpoint does
            db.checkpoint(engine)

    timed = time_call(write, min_seconds=600.0, max_calls=writes)  # ``writes`` calls
    engine.dispose()
    return {"page_size": page, "records": n, "bytes": len(inputs) + len(outputs),
            "writes": timed["calls"], "p50_ms": timed["p50_ms"]}


def _writer(url: str, seconds: float, inputs: str, outputs: str, start, out) -> None:
    """One writer process: ready, then write until ``seconds`` pass; CPU s and count to ``out``."""
    from app.prediction_log import db

    engine = db.make_engine(url, autocheckpoint=False)
    db.write(engine, [_group(inputs, outputs)], [])
    out.put("ready")
    start.wait()
    cpu, n, end = time.thread_time(), 0, time.monotonic() + seconds
    while time.monotonic() < end:
        db.write(engine, [_group(inputs, outputs)], [])
        n += 1
    out.put((time.thread_time() - cpu, n))


def measure(page: int, writers: int, seconds: float, workdir: Path) -> dict:
    """CPU per write and writes per second of ``writers`` processes on a new database."""
    from app.prediction_log import db

    inputs, outputs = _columns_json(1, seed=page + writers)
    url = new_database(workdir / f"log-{page}-{writers}.db", page)
    engine = db.make_engine(url, autocheckpoint=False)
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, seconds, inputs, outputs, start, out))
             for _ in range(writers)]
    for p in procs:
        p.start()
    for _ in procs:  # every writer has its engine and wrote once
        out.get(timeout=120)  # "ready" (a writer that failed to start: queue.Empty)
    start.set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(1.0)
        db.checkpoint(engine)
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    with engine.connect() as conn:
        got = conn.exec_driver_sql("PRAGMA page_size").scalar()
    engine.dispose()
    cpu, n = sum(r[0] for r in results), sum(r[1] for r in results)
    return {"page_size": int(got), "writers": writers, "writes": n,
            "cpu_us_per_write": round(cpu / max(n, 1) * 1e6, 1),
            "writes_per_s": round(n / seconds, 1)}


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--page-sizes", default="4096,1024")
    parser.add_argument("--writers", default="1,2")
    parser.add_argument("--batch", type=int, default=1000, help="records of the large group")
    parser.add_argument("--large-writes", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS / "log_writers.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows, large, pages = [], [], [int(p) for p in args.page_sizes.split(",")]
    facts = machine.facts()
    with tempfile.TemporaryDirectory(prefix="caretflow-logw-") as tmp:
        for writers in map(int, args.writers.split(",")):
            for page in pages:
                rows.append(measure(page, writers, args.seconds, Path(tmp)))
                log.info("page %5d, %d writer(s): %7.1f us CPU per write, %8.1f writes/s",
                         rows[-1]["page_size"], writers, rows[-1]["cpu_us_per_write"],
                         rows[-1]["writes_per_s"])
        for page in pages:
            large.append(large_group(page, args.batch, args.large_writes, Path(tmp)))
            log.info("page %5d, one %d-record group (%d bytes): p50 %.3f ms", page,
                     args.batch, large[-1]["bytes"], large[-1]["p50_ms"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seconds": args.seconds, "machine": facts, "rows": rows,
                                    "large": large}, indent=2))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
