"""Prometheus metrics (multiprocess-aware: ``PROMETHEUS_MULTIPROC_DIR`` under gunicorn)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
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
    live_metric: Gauge
    labels: Gauge
    drift_psi: Gauge
    model_status: Gauge
    ab_decision: Gauge
    gate_min: Gauge
    gate_max: Gauge
    min_labels: Gauge
    estimated_metric: Gauge
    rejected_rows: Counter


def _gauge(name: str, doc: str, labels: list[str]) -> Gauge:
    # One worker of the instance sets them (``app.leadership``); after it dies another
    # takes over, and the exposition keeps the most recent values of the live workers.
    return Gauge(name, doc, labels, multiprocess_mode="livemostrecent")


_LOCK = threading.Lock()
_TELEMETRY: Telemetry | None = None
_CHILDREN: dict[tuple, object] = {}  # (metric, label values) -> child (request path)


def get() -> Telemetry:
    """The metric families, created once per process on first use.

    Thread-safe: the background loops and the request threads may ask first together; once
    created, no lock is taken (this runs on every request).
    """
    global _TELEMETRY
    if _TELEMETRY is None:
        with _LOCK:
            if _TELEMETRY is None:
                _TELEMETRY = _create()
    return _TELEMETRY


def child(metric, *values: str):
    """``metric.labels(*values)``, remembered: a request pays one dict lookup per metric.

    For the per-request families (none of their children is ever removed). Two threads
    asking first together get the same child from ``labels`` (it locks), so either stored
    value is right.
    """
    key = (metric, values)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*values)
    return found


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request of ``route`` and observe its latency."""
    tel = get()
    child(tel.requests, route, method, str(status)).inc()
    child(tel.latency, route).observe(seconds)


def _create() -> Telemetry:
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
        live_metric=_gauge("caretflow_live_metric", "Live metric over the health window",
                           ["model", "version", "arm", "metric"]),
        labels=_gauge("caretflow_labels", "Labelled records in the health window",
                      ["model", "version", "arm"]),
        drift_psi=_gauge("caretflow_drift_psi", "PSI of recent inputs vs the training reference",
                         ["model", "version", "feature"]),
        model_status=_gauge("caretflow_model_status", "1 for the version's current status",
                            ["model", "version", "status"]),
        ab_decision=_gauge("caretflow_ab_decision", "1 for the A/B test's current decision",
                           ["model", "decision"]),
        gate_min=_gauge("caretflow_gate_min", "Gate floor of a metric", ["model", "version",
                                                                          "metric"]),
        gate_max=_gauge("caretflow_gate_max", "Gate ceiling of a metric", ["model", "version",
                                                                            "metric"]),
        min_labels=_gauge("caretflow_min_labels", "Labels needed before health is judged",
                          ["model", "version"]),
        estimated_metric=_gauge("caretflow_estimated_metric",
                                "Metric estimated without labels (CBPE) over the champion's "
                                "recent unlabelled predictions", ["model", "version", "metric"]),
        rejected_rows=Counter("caretflow_rejected_rows_total",
                              "Records rejected by validation (422), by field and reason",
                              ["field", "reason"]),
    )


def exposition() -> tuple[bytes, str]:
    """The Prometheus text of this process, or of every worker in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
