"""Mixed load: ``/predict`` and ``/feedback`` for a fixed time, then an exact row count.

Every prediction carries a unique routing key (``CustomerId = <run tag>-<thread>-<n>``), so
afterwards the prediction database must hold exactly the acknowledged predictions and
feedback of this run. A request cut by a dying worker (connection reset) is retried; a
retried feedback answered 409 was stored by the first attempt. Bounded in time and count.

    python -m bench.load_mixed --url http://127.0.0.1:8000 --key $K --seconds 60 \
        --db-url sqlite:///predictions.db --out bench/results/reliability/load.json
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests

log = logging.getLogger("bench.load_mixed")
RECORD = {"CreditScore": 619, "Geography": "France", "Gender": "Female", "Age": 42, "Tenure": 2,
          "Balance": 0.0, "NumOfProducts": 1, "HasCrCard": 1, "IsActiveMember": 1,
          "EstimatedSalary": 101348.88}
RETRIES = 5


@dataclass
class Tally:
    """What one load run sent and what the server acknowledged."""

    tag: str
    latencies: list = field(default_factory=list)
    predictions: dict = field(default_factory=dict)  # routing key -> prediction id
    feedback: set = field(default_factory=set)  # acknowledged prediction ids
    errors: dict = field(default_factory=dict)  # final failures by kind
    retried: int = 0
    requests: int = 0
    elapsed: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)  # ends the run early
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, kind: str) -> None:
        """Count a request that failed for good."""
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1


def _call(session, tally: Tally, url: str, body: dict, key: str):
    """POST with retries on connection errors and 503; returns the final response or None."""
    for attempt in range(RETRIES):
        start = time.perf_counter()
        try:
            r = session.post(url, json=body, headers={"X-API-Key": key}, timeout=30)
        except requests.RequestException:
            with tally.lock:
                tally.requests += 1
                tally.retried += 1
            time.sleep(0.05 * (attempt + 1))
            continue
        with tally.lock:
            tally.requests += 1
            tally.latencies.append(time.perf_counter() - start)
        if r.status_code == 503 and attempt < RETRIES - 1:
            with tally.lock:
                tally.retried += 1
            time.sleep(float(r.headers.get("Retry-After", "1")))
            continue
        return r
    return None


def _worker(tally: Tally, urls: list[str], key: str, deadline: float, max_requests: int,
            feedback_ratio: float, n: int) -> None:
    rng, session, i, pending = random.Random(n), requests.Session(), 0, []
    while (time.monotonic() < deadline and tally.requests < max_requests
           and not tally.stop.is_set()):
        base = urls[(n + i) % len(urls)]
        if pending and rng.random() < feedback_ratio:
            pid = pending.pop(rng.randrange(len(pending)))
            r = _call(session, tally, f"{base}/feedback",
                      {"prediction_id": pid, "true_value": rng.randint(0, 1)}, key)
            if r is not None and r.status_code in (201, 409):  # 409: a cut first try stored it
                with tally.lock:
                    tally.feedback.add(pid)
            else:
                tally.error(f"feedback_{getattr(r, 'status_code', 'conn')}")
        else:
            routing = f"{tally.tag}-{n}-{i}"
            record = {**RECORD, "Age": rng.randint(18, 90), "CreditScore": rng.randint(350, 850),
                      "Balance": round(rng.uniform(0, 2e5), 2), "CustomerId": routing}
            r = _call(session, tally, f"{base}/predict", record, key)
            if r is not None and r.status_code == 200:
                pid = r.json()["prediction_id"]
                pending.append(pid)
                with tally.lock:
                    tally.predictions[routing] = pid
            else:
                tally.error(f"predict_{getattr(r, 'status_code', 'conn')}")
        i += 1


def run(urls: list[str], key: str, seconds: float, concurrency: int = 4,
        feedback_ratio: float = 0.4, max_requests: int = 200_000, during=None) -> Tally:
    """Run the load; ``during(tally)`` (optional) runs in this thread meanwhile (a fault).

    The run ends after ``seconds``, or earlier when ``during`` sets ``tally.stop``.

    Returns:
        The tally (acknowledged predictions and feedback, latencies, errors).
    """
    tally = Tally(tag=f"load{uuid.uuid4().hex[:10]}")
    started = time.monotonic()
    deadline = started + seconds
    threads = [threading.Thread(target=_worker, args=(tally, urls, key, deadline, max_requests,
                                                      feedback_ratio, n), daemon=True)
               for n in range(concurrency)]
    for t in threads:
        t.start()
    if during is not None:
        try:
            during(tally)
        except BaseException:
            tally.stop.set()  # a failed fault injection must not leave the load running
            raise
    ended = min(time.monotonic(), deadline) if tally.stop.is_set() else deadline
    for t in threads:
        t.join(seconds + 120)
    tally.elapsed = round(min(ended, time.monotonic()) - started, 1)  # load time only
    return tally


def stored(db_url: str, tag: str) -> dict[str, int]:
    """Rows of this run in the prediction database: predictions and feedback (answered only)."""
    import orjson
    from sqlalchemy import and_, create_engine, func, select

    from app.prediction_log.db import labels, prediction_groups

    g = prediction_groups
    engine = create_engine(db_url)
    mine = and_(g.c.routing.like(f'%"{tag}-%'), g.c.arm != "shadow")
    try:
        with engine.connect() as conn:
            groups = list(conn.execute(select(g.c.size, g.c.routing).where(mine)))
            fb = conn.execute(select(func.count()).select_from(labels.join(g, and_(
                func.substr(labels.c.prediction_id, 1, 28) == g.c.request_id,
                labels.c.arm == g.c.arm))).where(mine)).scalar()
    finally:
        engine.dispose()
    keys = {k for _size, routing in groups for k in orjson.loads(routing)}
    return {"predictions": sum(size for size, _routing in groups), "distinct_keys": len(keys),
            "feedback": int(fb)}


def summary(tally: Tally, seconds: float, rows: dict | None = None) -> dict:
    """Figures of a run: requests, errors, latency percentiles, rows expected vs stored."""
    lat = np.array(tally.latencies) * 1000 if tally.latencies else np.array([0.0])
    out = {"seconds": seconds, "requests": tally.requests,
           "rate_per_s": round(tally.requests / max(seconds, 1e-9), 1),
           "predictions_acknowledged": len(tally.predictions),
           "feedback_acknowledged": len(tally.feedback), "errors": sum(tally.errors.values()),
           "error_kinds": tally.errors, "retried": tally.retried,
           "p50_ms": round(float(np.percentile(lat, 50)), 2),
           "p99_ms": round(float(np.percentile(lat, 99)), 2),
           "max_ms": round(float(lat.max()), 2)}
    if rows is not None:
        out["rows_stored"] = rows
    return out


def main() -> None:
    """CLI: one load run, figures as JSON (stdout and ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", action="append", required=True, help="repeat for instances")
    parser.add_argument("--key", required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--feedback-ratio", type=float, default=0.4)
    parser.add_argument("--db-url", help="prediction DB to count rows in afterwards")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tally = run(args.url, args.key, args.seconds, args.concurrency, args.feedback_ratio)
    result = summary(tally, args.seconds, stored(args.db_url, tally.tag) if args.db_url else None)
    log.info(json.dumps(result, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
