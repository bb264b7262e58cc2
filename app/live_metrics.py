"""Live metrics from stored feedback, logged to each version's source run through an outbox.

Every worker runs this loop; a compare-and-set on ``live_progress`` lets exactly one of
them queue the metrics for a given feedback count, and outbox rows are claimed before
they are sent, so nothing is logged twice by design and nothing is lost when MLflow is
down (rows stay queued and are retried).
"""

from __future__ import annotations

import logging
import math
import time
import uuid

import numpy as np
from mlflow.entities import Metric
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from app import telemetry
from app.prediction_log import db, queries
from caretflow.metrics import interval_metrics, label_metrics, regression_metrics

log = logging.getLogger(__name__)
CLAIM_TIMEOUT = 60.0
BATCH = 500
TASK_METRICS = {"classification": ("accuracy", "precision", "recall", "f1", "roc_auc"),
                "regression": ("rmse", "mae", "mse", "r2", "interval_coverage")}


def compute(task: str, rows) -> dict[str, float]:
    """Metrics (without prefix) from labelled prediction rows; NaNs are dropped.

    Args:
        task: ``classification`` or ``regression``.
        rows: rows with ``prediction``, ``probability``, ``lower``, ``upper``, ``true_value``.

    Returns:
        Metric name -> value.
    """
    if not rows:
        return {}
    y = np.array([r.true_value for r in rows], dtype=float)
    pred = np.array([r.prediction for r in rows], dtype=float)
    if task == "classification":
        out = label_metrics(y.astype(int), pred.astype(int))
        proba = np.array([r.probability for r in rows], dtype=float)
        if len(np.unique(y)) == 2 and not np.isnan(proba).any():
            from sklearn.metrics import roc_auc_score

            out["roc_auc"] = float(roc_auc_score(y.astype(int), proba))
    else:
        out = regression_metrics(y, pred)
        lower = np.array([r.lower for r in rows], dtype=float)
        upper = np.array([r.upper for r in rows], dtype=float)
        if not (np.isnan(lower).any() or np.isnan(upper).any()):
            out["interval_coverage"] = interval_metrics(y, lower, upper)["interval_coverage"]
    return {k: v for k, v in out.items() if v is not None and math.isfinite(v)}


class LiveMetrics:
    """Queue and send live metrics for one registered model.

    Args:
        engine: the prediction database.
        client: MLflow client.
        model_name: registered model name.
        task: the model's task.
    """

    def __init__(self, engine: Engine, client, model_name: str, task: str):
        self.engine, self.client, self.name, self.task = engine, client, model_name, task
        self._run_ids: dict[str, str] = {}
        self._seen_seq = -1

    def tick(self) -> None:
        """Queue metrics for versions with new feedback, then send what is queued."""
        seq = queries.last_feedback_seq(self.engine)
        if seq != self._seen_seq:
            for version, count in queries.feedback_counts(self.engine, self.name).items():
                self._queue(version, count)
            self._seen_seq = seq
        self.send()

    def _run_id(self, version: str) -> str | None:
        if version not in self._run_ids:
            try:
                self._run_ids[version] = self.client.get_model_version(self.name, version).run_id
            except Exception as exc:  # noqa: BLE001 - MLflow down: try again next round
                log.warning("cannot resolve the run of version %s yet: %s", version, exc)
                self._seen_seq = -2
                return None
        return self._run_ids[version]

    def _queue(self, version: str, count: int) -> None:
        p = db.live_progress
        key = and_(p.c.model_name == self.name, p.c.model_version == version)
        with self.engine.connect() as conn:
            done = conn.execute(select(p.c.feedback_count).where(key)).scalar()
        if done is not None and done >= count:
            return
        run_id = self._run_id(version)
        if run_id is None:
            return
        values = compute(self.task, queries.labelled(self.engine, self.name, version))
        now = int(time.time() * 1000)
        rows = [{"run_id": run_id, "key": f"live_{k}", "value": float(v), "step": count,
                 "timestamp_ms": now, "sent": False} for k, v in sorted(values.items())]
        try:
            with self.engine.begin() as conn:
                if done is None:
                    conn.execute(insert(p).values(model_name=self.name, model_version=version,
                                                  feedback_count=count))
                elif conn.execute(update(p).where(key, p.c.feedback_count == done)
                                  .values(feedback_count=count)).rowcount != 1:
                    return  # another worker queued this count
                if rows:
                    conn.execute(insert(db.metric_outbox), rows)
        except IntegrityError:
            return  # another worker inserted the progress row first

    def send(self) -> int:
        """Claim queued metrics, log them with ``log_batch`` per run; returns how many."""
        box, token, now = db.metric_outbox, uuid.uuid4().hex, time.time()
        free = or_(box.c.claim.is_(None), box.c.claimed_at < now - CLAIM_TIMEOUT)
        with self.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(select(box.c.id).where(box.c.sent.is_(False), free)
                                              .order_by(box.c.id).limit(BATCH))]
            if not ids:
                return 0
            conn.execute(update(box).where(box.c.id.in_(ids), free)
                         .values(claim=token, claimed_at=now))
        with self.engine.connect() as conn:
            rows = list(conn.execute(select(box).where(box.c.claim == token)))
        by_run: dict[str, list] = {}
        for r in rows:
            by_run.setdefault(r.run_id, []).append(r)
        sent = 0
        for run_id, items in by_run.items():
            ids = [r.id for r in items]
            try:
                self.client.log_batch(run_id, metrics=[
                    Metric(r.key, r.value, r.timestamp_ms, r.step) for r in items])
            except Exception as exc:  # noqa: BLE001 - keep them queued, retry next round
                log.warning("live metrics for run %s not logged yet: %s", run_id, exc)
                with self.engine.begin() as conn:
                    conn.execute(update(box).where(box.c.id.in_(ids))
                                 .values(claim=None, claimed_at=None))
                continue
            with self.engine.begin() as conn:
                conn.execute(delete(box).where(box.c.id.in_(ids)))
            sent += len(items)
        if sent:
            telemetry.get().live_metrics_logged.inc(sent)
        return sent
