"""The A/B verdict over the prediction log: champion against challenger, ``GET /ab_test``.

The arms are ``caretflow.ab_arms``, the statistics ``caretflow.ab_stats`` (an always-valid
sequential test), shared with the ``monitor`` step.
"""

from __future__ import annotations

import time

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from app.prediction_log.db import labels
from caretflow import ab_arms, ab_stats

COLUMNS = ["prediction_id", "arm", "model_version", "prediction", "probability", "true_value"]


def _rows(engine: Engine, model_name: str, versions: list[str], since: float) -> list:
    query = (select(labels.c.prediction_id, labels.c.arm, labels.c.model_version,
                    labels.c.prediction, labels.c.probability, labels.c.true_value)
             .where(labels.c.model_name == model_name, labels.c.created_at >= since,
                    labels.c.model_version.in_(versions)))
    with engine.connect() as conn:
        return list(conn.execute(query))


def arms(engine: Engine, model_name: str, champion: str, challenger: str, task: str,
         since: float) -> tuple[dict, dict, dict | None]:
    """Labelled records of both arms, and the shadow pairs (``caretflow.ab_arms``)."""
    rows = _rows(engine, model_name, [champion, challenger], since)
    frame = pd.DataFrame([r._asdict() for r in rows], columns=COLUMNS)
    return ab_arms.arms(frame, task, champion, challenger)


def verdict(engine: Engine, model_name: str, contract: dict, champion: str, challenger: str,
            window_hours: float, effect: float | None = None, alpha: float = 0.05,
            power: float = 0.8, now: float | None = None) -> dict:
    """``GET /ab_test``'s body for champion ``champion`` against ``challenger``.

    Args:
        engine: the prediction database.
        model_name: registered model name.
        contract: the champion's contract (task and primary metric).
        champion: champion version.
        challenger: challenger version.
        window_hours: labels of this many past hours count.
        effect: smallest improvement worth promoting (metric units); default per metric.
        alpha: level of the sequential test.
        power: power asked for at ``needed_per_arm``.
        now: the time (tests).
    """
    now = time.time() if now is None else now
    task, metric = contract["task"], contract["primary_metric"]
    effect = ab_stats.DEFAULT_EFFECT.get(metric, 0.02) if effect is None else effect
    a, b, paired = arms(engine, model_name, champion, challenger, task,
                        now - window_hours * 3600)
    out = ab_stats.verdict(metric, ab_stats.REPORTED[task], a, b, paired, effect=effect,
                           alpha=alpha, power=power)
    return {"model_name": model_name, "window_hours": window_hours, **out}


def text(result: dict) -> str:
    """One human sentence for an ``ab_verdict`` alert."""
    d, metric = result["difference"] or {}, result["metric"]
    ch, cl = result["champion"], result["challenger"]
    numbers = (f"{metric} difference {d['value']:+.4f} (95 % always-valid interval "
               f"{d['ci_low']:+.4f} to {d['ci_high']:+.4f}, p={d['p_value']:.3g}) on "
               f"{ch['labels']} / {cl['labels']} labels") if d else "no difference yet"
    verdicts = {"promote_challenger": "the challenger is better: promote it",
                "keep_champion": "keep the champion",
                "insufficient_data": "not enough data yet"}
    return (f"{result['model_name']} A/B test, champion v{ch['version']} vs challenger "
            f"v{cl['version']}: {verdicts[result['decision']]} ({numbers}).")
