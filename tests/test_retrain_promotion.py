"""Promotion by evidence after a retrain: only a version better on the holdout moves an alias."""

from __future__ import annotations

import pytest

from caretflow.modelling.selection import Candidate, Comparison
from caretflow.retrain.promotion import retrain_choice


def _candidates() -> list[Candidate]:
    good = Candidate("7", "v2_random_forest", "r7", {}, cv={"roc_auc": 0.85}, passed=True)
    worse = Candidate("8", "v4_xgboost", "r8", {}, cv={"roc_auc": 0.80}, passed=True)
    return [good, worse]


def _compare(champion_auc: float, best_auc: float, rows: int):
    def compare(best: Candidate) -> Comparison:
        current = Candidate("3", "v2_random_forest", "r3", {"roc_auc": champion_auc})
        return Comparison(current, rows, {"roc_auc": best_auc})
    return compare


@pytest.mark.parametrize(("promote", "decision", "champion", "challenger"), [
    ("direct", "champion", "7", None), ("ab", "challenger", None, "7")])
def test_a_better_retrained_version_is_promoted_by_mode(promote, decision, champion, challenger):
    out = retrain_choice(_candidates(), "roc_auc", _compare(0.70, 0.82, 300), 100, promote)
    assert out.decision == decision and out.best.version == "7"
    assert (out.choice.champion.version if out.choice.champion else None) == champion
    assert (out.choice.challenger.version if out.choice.challenger else None) == challenger
    assert out.metrics() == {"retrain_before_roc_auc": 0.70, "retrain_after_roc_auc": 0.82,
                             "retrain_holdout_rows": 300.0}
    assert "beats the champion on 300 holdout rows" in out.choice.note


def test_no_evidence_moves_nothing():
    for compare, why in ((_compare(0.82, 0.82, 300), "is not better"),
                         (_compare(0.70, 0.82, 50), "only 50 holdout rows")):
        out = retrain_choice(_candidates(), "roc_auc", compare, 100, "direct")
        assert out.decision == "kept" and why in out.choice.note
        assert out.choice.champion is None and out.choice.challenger is None
    failed = [Candidate("9", "v2", "r9", {}, cv={"roc_auc": 0.9}, passed=False)]
    assert retrain_choice(failed, "roc_auc", _compare(0.7, 0.9, 300), 100, "ab").decision == \
        "failed_gate"
    with pytest.raises(ValueError, match="retrain.promote"):
        retrain_choice(_candidates(), "roc_auc", None, 100, "always")
