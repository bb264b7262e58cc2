"""One ``/invocations`` request in-process: with warm caches, and after a cache sweep.

In a server under load, a worker's request starts after the other worker, the load client
and the kernel ran on the same cores, so the CPU caches hold their data rather than this
request's. Called back to back in one process, the same request finds its code and data
in cache. ``bench/request_budget.py`` times it both ways (the app called through its WSGI
entry, no HTTP, no background threads): back to back ("warm"), and with a buffer larger
than a core's cache written between two calls, outside the timed part ("cold"). Beside
its server CPU per request, this shows how much of that CPU is the cold start of each
request rather than work a profile of a warm loop would show.
"""

from __future__ import annotations

import io
import logging
import sys
import time
from pathlib import Path

import numpy as np

from bench import payloads, servers
from bench.batch_phases import in_process_app

log = logging.getLogger("bench.request_cold")
SWEEP_MB = 8  # larger than one core's L2 cache on the machines the bench runs on


def invocations_call(app, body: bytes):
    """A function answering one ``/invocations`` request with ``body`` through ``app.wsgi_app``.

    Raises:
        RuntimeError: (when called) the app answered anything but 200.
    """
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def call() -> None:
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/invocations",
                   "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
                   "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
                   "wsgi.errors": sys.stderr, "CONTENT_TYPE": "application/json",
                   "CONTENT_LENGTH": str(len(body)), "HTTP_X_API_KEY": servers.BENCH_KEY,
                   "REMOTE_ADDR": "127.0.0.1"}
        answer = app.wsgi_app(environ, start_response)
        b"".join(answer)
        getattr(answer, "close", lambda: None)()
        if statuses.pop() != "200 OK":
            raise RuntimeError("the in-process /invocations request did not answer 200")

    return call


def per_call_us(call, calls: int, sweep: np.ndarray | None, rounds: int = 3) -> float:
    """The lowest over ``rounds`` of the mean µs per call (``sweep`` written before each call)."""
    best = float("inf")
    for _ in range(rounds):
        spent = 0.0
        for _ in range(calls):
            if sweep is not None:
                sweep += 1.0  # evicts the call's code and data from the core's caches
            start = time.perf_counter()
            call()
            spent += time.perf_counter() - start
        best = min(best, spent / calls * 1e6)
    return round(best, 1)


def measure(tracking_uri: str, model: str, workdir: Path, calls: int) -> list[dict]:
    """Warm and cold µs of one one-record request of ``model``, log off and on."""
    body = payloads.dataframe_split(payloads.records(1, seed=1, dataset=model))
    sweep = np.ones(SWEEP_MB << 17)  # float64: 8 bytes each
    rows = []
    for prediction_log in (False, True):
        folder = workdir / f"{model}-log-{'on' if prediction_log else 'off'}"
        folder.mkdir(parents=True, exist_ok=True)
        app = in_process_app(tracking_uri, folder, prediction_log, MODEL_NAME=model,
                             BACKGROUND=False)
        try:
            call = invocations_call(app, body)
            for _ in range(max(50, calls // 5)):
                call()
            warm, cold = per_call_us(call, calls, None), per_call_us(call, calls, sweep)
        finally:
            app.extensions["caretflow"].stop()
        rows.append({"model": model, "prediction_log": prediction_log, "warm_us": warm,
                     "cold_us": cold, "sweep_mb": SWEEP_MB, "calls": calls})
        log.info("%-7s in-process, log %-3s  warm %7.1f us  after a %d MB sweep %7.1f us",
                 model, "on" if prediction_log else "off", warm, SWEEP_MB, cold)
    return rows
