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
from app.contracts import threshold
from app.prediction_log import db, queries
from caretflow.metrics import classification_metrics, interval_metrics, regression_metrics

log = logging.getLogger(__name__)
CLAIM_TIMEOUT = 60.0
BATCH = 500
TASK_METRICS = {"classification": ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc",
                                   "tn", "fp", "fn", "tp"),
                "regression": ("rmse", "mae", "mse", "r2", "interval_coverage",
                               "interval_width")}


def _column(rows, name: str) -> np.ndarray:
    return np.array([getattr(r, name) for r in rows], dtype=float)


def compute(contract: dict, rows) -> dict[str, float]:
    """Live metrics (without prefix) from labelled rows, by the functions test metrics use.

    Classification: ``caretflow.metrics.classification_metrics`` on the logged
    probabilities at the contract's threshold (so ``tn``/``fp``/``fn``/``tp`` too);
    regression: ``regression_metrics`` plus ``interval_metrics``. Non-finite values
    are dropped.

    Args:
        contract: the contract of the version that scored the rows.
        rows: rows with ``prediction``, ``probability``, ``lower``, ``upper``, ``true_value``.

    Returns:
        Metric name -> value.
    """
    if not rows:
        return {}
    y = _column(rows, "true_value")
    if contract["task"] == "classification":
        proba = _column(rows, "probability")
        keep = ~np.isnan(proba)  # a row without a probability cannot be scored
        out = (classification_metrics(y[keep].astype(int), proba[keep], threshold(contract))
               if keep.any() else {})
    else:
        out = regression_metrics(y, _column(rows, "prediction"))
        lower, upper = _column(rows, "lower"), _column(rows, "upper")
        if not (np.isnan(lower).any() or np.isnan(upper).any()):
            out.update(interval_metrics(y, lower, upper))
    return {k: v for k, v in out.items() if v is not None and math.isfinite(v)}


class LiveMetrics:
    """Queue and send live metrics for one registered model.

    Args:
        engine: the prediction database.
        client: MLflow client.
        model_name: registered model name.
        contract_of: version -> its contract (``ModelStore.contract_of``); may raise while
            the registry is down (tried again next round).
    """

    def __init__(self, engine: Engine, client, model_name: str, contract_of):
        self.engine, self.client, self.name = engine, client, model_name
        self.contract_of = contract_of
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

    def _contract(self, version: str) -> dict | None:
        try:
            contract = self.contract_of(version)
        except Exception as exc:  # noqa: BLE001 - registry down: try again next round
            log.warning("cannot read the contract of version %s yet: %s", version, exc)
            self._seen_seq = -2
            return None
        if contract is None:
            log.debug("version %s carries no contract: no live metrics", version)
        return contract

    def _queue(self, version: str, count: int) -> None:
        p = db.live_progress
        key = and_(p.c.model_name == self.name, p.c.model_version == version)
        with self.engine.connect() as conn:
            done = conn.execute(select(p.c.feedback_count).where(key)).scalar()
        if done is not None and done >= count:
            return
        run_id = self._run_id(version)
        contract = self._contract(version) if run_id else None
        if contract is None:
            return
        values = compute(contract, queries.labelled(self.engine, self.name, version))
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
