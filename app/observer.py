"""The background loop that acts on what the server observes.

Every ``OBSERVE_SECONDS`` one worker of the instance (``app.leadership``; when it exits,
another takes over) reads the prediction log once and
- sets the Prometheus gauges (live metrics and labels per version and arm, drift, status,
  gate bounds, the A/B decision, the serving version's metrics estimated from the outputs
  of its unlabelled predictions): never computed per scrape;
- turns changes of status into alerts (``app.alerts.events``: one per change, whatever the
  number of workers), and sends due alerts to the webhooks;
- with ``AB_AUTO_PROMOTE``, promotes a challenger the verdict says is better and that passed
  its gate.
"""

from __future__ import annotations

import logging
import math
import time

import pandas as pd

from app import ab_test, health_report, promotion, telemetry
from app.alerts import events
from app.alerts.delivery import Deliverer
from app.alerts.events import Change
from app.live_metrics import compute
from app.prediction_log import queries
from app.state import State
from caretflow.monitoring.analysis import estimated_metrics

log = logging.getLogger(__name__)
STATUSES = ("healthy", "degraded", "insufficient_data")
DECISIONS = ("promote_challenger", "keep_champion", "insufficient_data")
ESTIMATED = {"classification": ("roc_auc", "accuracy", "f1", "precision", "recall"),
             "regression": ("rmse", "mae")}
ESTIMATE_MIN_ROWS = 30  # fewer unlabelled records than this: no estimate


def health_change(name: str, version: str, entry: dict):
    """The alert of a health status change (recovery must hold: no flapping)."""
    def change(old: str, new: str) -> Change | None:
        live = ", ".join(f"{k.removeprefix('live_')} {v:.4g}"
                         for k, v in sorted(entry["live_metrics"].items())
                         if k.removeprefix("live_") in entry["thresholds"])
        details = {"failures": entry["failures"], "live_metrics": entry["live_metrics"],
                   "thresholds": entry["thresholds"], "labels": entry["feedback"]}
        if new == "degraded":
            return Change("model_degraded", f"{name} version {version} is degraded: "
                          f"{'; '.join(entry['failures'])} over {entry['feedback']} labels.",
                          details)
        if old == "degraded" and new == "healthy":
            return Change("model_recovered", f"{name} version {version} recovered ({live}, "
                          f"{entry['feedback']} labels).", details, hold=True)
        return None
    return change


def drift_change(name: str, version: str, drift: dict):
    """The alert of a drift status change (into ``drift`` only)."""
    def change(old: str, new: str) -> Change | None:
        if new != "drift":
            return None
        worst = sorted(((f["psi"], c) for c, f in drift["features"].items()
                        if f["status"] == "drift"), reverse=True)
        named = ", ".join(f"{c} (PSI {v:.2f})" for v, c in worst)
        return Change("drift", f"{name} version {version}: input drift on {named} over the "
                      f"last {drift['rows']} records.", {"features": drift["features"]})
    return change


class Observer:
    """One per worker; ``tick`` is the background task."""

    def __init__(self, st: State):
        self.st = st
        self.deliverer = Deliverer(st.engine, st.settings.ALERT_TIMEOUT_SECONDS)
        self._estimated_set: dict[str, set[str]] = {}  # version -> estimated metrics set

    def tick(self) -> None:
        """Gauges, alerts, verdict, promotion, then the webhook deliveries."""
        st = self.st
        if st.store.default is not None:
            contract = st.store.default.contract
            hours = st.settings.HEALTH_WINDOW_HOURS or contract["health"]["window_hours"]
            self._health(contract, hours)
            self._estimated(contract, hours)
            if st.store.challenger is not None:
                self._ab(contract, hours)
        if st.settings.ALERT_WEBHOOK_URLS:
            self.deliverer.tick()

    def _health(self, contract: dict, hours: float) -> None:
        st, tel, name = self.st, telemetry.get(), self.st.store.name
        body = health_report.report(contract, st.engine, st.store, hours)
        by_arm = queries.labelled_by_arm(st.engine, name, time.time() - hours * 3600)
        urls, hold = st.settings.ALERT_WEBHOOK_URLS, st.settings.ALERT_RECOVERY_SECONDS
        for entry in body["versions"]:
            version = entry["version"]
            own = health_report.version_contract(st.store, version, contract)
            for (v, arm), rows in by_arm.items():
                if v != version:
                    continue
                tel.labels.labels(name, version, arm).set(len(rows))
                for metric, value in compute(own, rows).items():
                    tel.live_metric.labels(name, version, arm, metric).set(value)
            for status in STATUSES:
                tel.model_status.labels(name, version, status).set(
                    float(entry["status"] == status))
            for metric, bounds in entry["thresholds"].items():
                if bounds.get("min") is not None:
                    tel.gate_min.labels(name, version, metric).set(bounds["min"])
                if bounds.get("max") is not None:
                    tel.gate_max.labels(name, version, metric).set(bounds["max"])
            tel.min_labels.labels(name, version).set(entry["min_feedback"])
            drift = entry["drift"]
            for feature, f in drift.get("features", {}).items():
                tel.drift_psi.labels(name, version, feature).set(f["psi"])
            events.observe(st.engine, name, version, "health", entry["status"],
                           health_change(name, version, entry), urls, hold_seconds=hold)
            if drift.get("status") in ("ok", "warn", "drift"):
                events.observe(st.engine, name, version, "drift", drift["status"],
                               drift_change(name, version, drift), urls)

    def _estimated(self, contract: dict, hours: float) -> None:
        """Estimated metrics over the serving version's unlabelled predictions of the window.

        CBPE (regression: the interval width), as the monitor step estimates them. Set once
        at least ``ESTIMATE_MIN_ROWS`` such records exist; a version that stopped
        serving gets NaN (a gap in Grafana, never a firing alert).
        """
        st, gauge, name = self.st, telemetry.get().estimated_metric, self.st.store.name
        version = st.store.default.version
        for old, metrics in self._estimated_set.items():
            if old != version:
                for metric in metrics:
                    gauge.labels(name, old, metric).set(float("nan"))
        self._estimated_set = {k: v for k, v in self._estimated_set.items() if k == version}
        outputs = queries.unlabelled_outputs(st.engine, name, version,
                                             time.time() - hours * 3600)
        if len(outputs.get("prediction", ())) < ESTIMATE_MIN_ROWS:
            return
        frame = pd.DataFrame({f"out_{k}": v for k, v in outputs.items()}, dtype=float)
        estimates = estimated_metrics(contract, frame)
        for metric in ESTIMATED[contract["task"]]:
            value = estimates.get(metric)
            if value is not None and math.isfinite(value):
                gauge.labels(name, version, metric).set(value)
                self._estimated_set.setdefault(version, set()).add(metric)

    def _ab(self, contract: dict, hours: float) -> None:
        st, name = self.st, self.st.store.name
        champion, challenger = st.store.default.version, st.store.challenger.version
        result = verdict_of(st, contract, champion, challenger, hours)
        gauge = telemetry.get().ab_decision
        for decision in DECISIONS:
            gauge.labels(name, decision).set(float(result["decision"] == decision))

        def change(old: str, new: str) -> Change | None:
            if new == "insufficient_data":
                return None
            return Change("ab_verdict", ab_test.text(result), _numbers(result))

        events.observe(st.engine, name, f"{champion}:{challenger}", "ab", result["decision"],
                       change, st.settings.ALERT_WEBHOOK_URLS, alert_version=challenger)
        if (st.settings.AB_AUTO_PROMOTE and result["decision"] == "promote_challenger"
                and _passed_gate(st, challenger)):
            promotion.promote(st, challenger, _numbers(result), by="auto")


def verdict_of(st: State, contract: dict, champion: str, challenger: str,
               hours: float) -> dict:
    """The A/B verdict with the server's settings."""
    s = st.settings
    return ab_test.verdict(st.engine, st.store.name, contract, champion, challenger, hours,
                           effect=s.AB_MIN_EFFECT, alpha=s.AB_ALPHA, power=s.AB_POWER)


def _numbers(result: dict) -> dict:
    return {k: result[k] for k in ("metric", "difference", "needed_per_arm", "decision",
                                   "paired")} | {
        "labels": {"champion": result["champion"]["labels"],
                   "challenger": result["challenger"]["labels"]}}


def _passed_gate(st: State, version: str) -> bool:
    """The challenger passed its gate on the held-out split (the ``gate`` tag of evaluate)."""
    try:
        mv = st.store.client.get_model_version(st.store.name, version)
    except Exception as exc:  # noqa: BLE001 - registry down: no promotion this round
        log.warning("cannot read the gate of version %s: %s", version, exc)
        return False
    if mv.tags.get("gate") != "passed":
        log.warning("%s v%s: the verdict favours it but its gate is %r; not promoted",
                    st.store.name, version, mv.tags.get("gate"))
        return False
    return True
