"""A registered version's description, written as a model card (Markdown, as MLflow shows it).

``train`` writes what the version is and how it did in cross-validation; ``evaluate``
rewrites it with the held-out test metrics, the gate and why it is or is not champion.
"""

from __future__ import annotations

from mlflow.tracking import MlflowClient


def _metrics(values: dict[str, float]) -> str:
    shown = {k: v for k, v in sorted(values.items()) if isinstance(v, int | float)}
    return ", ".join(f"{k} {v:.4g}" for k, v in shown.items()) or "none"


def _gate(gate: dict) -> str:
    signs = {"min": ">=", "max": "<="}
    return ", ".join(f"{metric} {signs[bound]} {value}" for metric, bounds in sorted(gate.items())
                     for bound, value in bounds.items() if value is not None) or "none"


def card(version_name: str, estimator: str, contract: dict, preprocess_run_id: str,
         cv_metrics: dict[str, float], test_metrics: dict[str, float] | None = None,
         gate: str | None = None, role: str | None = None) -> str:
    """The Markdown model card of one version.

    Args:
        version_name: the version config (``v4_xgboost`` ...).
        estimator: the estimator's class name.
        contract: the model's contract (task, features, decision rule, gate).
        preprocess_run_id: the run that made its data split.
        cv_metrics: cross-validated metrics on the training split.
        test_metrics: held-out test metrics (after ``evaluate``).
        gate: ``passed`` or ``failed: ...`` (after ``evaluate``).
        role: one sentence on why it is or is not champion (after ``evaluate``).
    """
    decision = contract["decision"]
    rule = (f"label 1 at probability >= {decision['threshold']:.4f} (tuned for F1 on "
            "out-of-fold training predictions)" if contract["task"] == "classification" else
            f"{decision['interval_level']:.0%} intervals ({decision['interval_method']})")
    lines = [
        f"### {contract['dataset']} · {version_name}",
        f"- **Model:** {estimator} inside caretflow's inference pipeline ({contract['task']}, "
        f"target `{contract['target']}`); decision: {rule}.",
        f"- **Inputs:** {len(contract['features'])} features "
        f"({', '.join(contract['features'])}); schema digest `{contract['schema_digest'][:12]}`.",
        f"- **Data:** training split of preprocess run `{preprocess_run_id}`.",
        f"- **Cross-validation (training split; chooses the champion):** {_metrics(cv_metrics)}.",
        f"- **Gate:** {_gate({m: b for m, b in contract['gate'].items() if m in cv_metrics})}.",
    ]
    if test_metrics is not None:
        lines.append(f"- **Held-out test (reported, never used to choose):** "
                     f"{_metrics(test_metrics)}; gate {gate}.")
    if role:
        lines.append(f"- **Role:** {role}")
    return "\n".join(lines)


def write(name: str, version: str, text: str) -> None:
    """Set the registered version's description."""
    MlflowClient().update_model_version(name, version, description=text)
