"""``evaluate``'s champion decision and what it writes to the registry.

The decision is ``caretflow.modelling.selection.choose`` after a pipeline run, or promotion
by evidence (``caretflow.retrain.promotion``) after a retrain. Writing it means: each
version's gate tag (and after a retrain ``retrained_from`` / ``snapshot_digest``), the
``champion`` / ``challenger`` / ``previous`` aliases, and each version's model card.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import mlflow
from mlflow.tracking import MlflowClient

from caretflow import model_card, registry
from caretflow.modelling.selection import Candidate, Choice, Comparison, choose
from caretflow.retrain.promotion import retrain_choice

log = logging.getLogger(__name__)


def decide(candidates: list[Candidate], primary: str,
           compare: Callable[[Candidate], Comparison] | None, retrain=None) -> Choice:
    """The aliases to set; after a retrain, its outcome is logged to the active run.

    Args:
        candidates: the gated versions.
        primary: the primary metric.
        compare: the comparison with the current champion (None: there is none).
        retrain: the config's ``retrain`` block (None: an ordinary pipeline run).
    """
    if retrain is None:
        return choose(candidates, primary, compare)
    outcome = retrain_choice(candidates, primary, compare, retrain.min_comparison_rows,
                             retrain.promote)
    mlflow.set_tags(outcome.tags())
    mlflow.log_metrics(outcome.metrics())
    return outcome.choice


def set_aliases(name: str, candidates: list[Candidate], choice: Choice, retrain=None) -> None:
    """Gate tags, then the aliases of ``choice``.

    After a retrain (``retrain``: the config block) the versions also get the tags
    ``retrained_from`` and ``snapshot_digest``, and a choice without a champion leaves the
    challenger as it is (no evidence moves nothing).
    """
    client = MlflowClient()
    for c in candidates:
        client.set_model_version_tag(
            name, c.version, "gate", "passed" if c.passed else "failed: " + "; ".join(c.failures)
        )
        if retrain is not None:
            client.set_model_version_tag(name, c.version, "retrained_from", retrain.from_version)
            client.set_model_version_tag(name, c.version, "snapshot_digest",
                                         retrain.snapshot_digest)
    champion, challenger = choice.champion, choice.challenger
    if champion is None:
        log.warning("%s: champion unchanged (%s)", name, choice.note)
    else:
        old = registry.alias_version(name, "champion")
        if old is not None and str(old.version) != champion.version:
            client.set_registered_model_alias(name, "previous", old.version)
        client.set_registered_model_alias(name, "champion", champion.version)
    if challenger is not None:
        client.set_registered_model_alias(name, "challenger", challenger.version)
    elif (retrain is None or champion is not None) and (
            stale := registry.alias_version(name, "challenger")) is not None:
        client.delete_registered_model_alias(name, "challenger")
        log.info(
            "%s: no runner-up passed the gate; cleared challenger (was v%s)", name, stale.version
        )
    log.info(
        "%s: champion %s, challenger %s",
        name,
        f"v{champion.version} ({champion.version_name})" if champion else "unchanged",
        f"v{challenger.version} ({challenger.version_name})" if challenger else "none",
    )


def write_cards(name: str, candidates: list[Candidate], choice: Choice, models: dict,
                pre_id: str, retrained: bool = False) -> None:
    """Each version's description: the model card with its test metrics, gate and role."""
    champion, challenger = choice.champion, choice.challenger
    for c in candidates:
        model = models[c.version]
        if not model.contract:
            continue
        role = ("champion: best cross-validated primary metric among the versions that "
                f"passed the gate. {choice.note}" if champion and c.version == champion.version
                else f"challenger: {choice.note}" if retrained and challenger
                and c.version == challenger.version
                else "challenger: runner-up by the cross-validated primary metric."
                if challenger and c.version == challenger.version
                else "not champion: it failed the gate." if not c.passed
                else f"not promoted: {choice.note}" if retrained
                else "not champion: a better cross-validated version passed the gate.")
        gate = "passed" if c.passed else "failed (" + "; ".join(c.failures) + ")"
        model_card.write(name, c.version, model_card.card(
            c.version_name, type(model.pipeline.steps[-1][1]).__name__, model.contract,
            pre_id, c.cv, c.metrics, gate, role))
