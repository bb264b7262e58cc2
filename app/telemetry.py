"""Prometheus metrics (multiprocess-aware: ``PROMETHEUS_MULTIPROC_DIR`` under gunicorn)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


@dataclass(frozen=True)
class Telemetry:
    """The server's metric families."""

    requests: Counter
    latency: Histogram
    predictions: Counter
    predict_latency: Histogram
    feedback: Counter
    load_failures: Counter
    live_metrics_logged: Counter


@lru_cache(maxsize=1)
def get() -> Telemetry:
    """The metric families, created once per process on first use."""
    return Telemetry(
        requests=Counter("caretflow_http_requests_total", "HTTP requests",
                         ["route", "method", "status"]),
        latency=Histogram("caretflow_http_request_seconds", "HTTP request latency",
                          ["route"], buckets=LATENCY_BUCKETS),
        predictions=Counter("caretflow_predictions_total", "Records predicted",
                            ["version", "arm"]),
        predict_latency=Histogram("caretflow_predict_seconds", "Model time per /predict call",
                                  ["version", "arm"], buckets=LATENCY_BUCKETS),
        feedback=Counter("caretflow_feedback_total", "Feedback items stored",
                         ["version", "source"]),
        load_failures=Counter("caretflow_model_load_failures_total", "Model load failures",
                              ["version"]),
        live_metrics_logged=Counter("caretflow_live_metrics_logged_total",
                                    "Live metric values logged to MLflow"),
    )


def exposition() -> tuple[bytes, str]:
    """The Prometheus text of this process, or of every worker in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
