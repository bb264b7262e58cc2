"""Champion choice: gate on test, choose by CV, compare with the current champion on unseen rows."""

import numpy as np
import pandas as pd

from caretflow.modelling.selection import (
    MIN_COMPARISON_ROWS,
    Candidate,
    Comparison,
    apply_gate,
    choose,
    unseen_rows,
)

GATE = {"roc_auc": {"min": 0.8}, "f1": {"min": 0.55}}


def _c(v, cv_auc, test_auc, f1=0.6):
    return Candidate(
        str(v), f"v{v}", f"run{v}", {"roc_auc": test_auc, "f1": f1}, cv={"roc_auc": cv_auc}
    )


def _gated(*cands):
    apply_gate(list(cands), GATE)
    return list(cands)


def test_champion_is_best_by_cv_while_test_ranks_the_other_way():
    # test ranking: v1 > v2 > v3; CV ranking: v3 > v2 > v1
    cands = _gated(_c(1, cv_auc=0.84, test_auc=0.92), _c(2, 0.86, 0.88), _c(3, 0.90, 0.83))
    choice = choose(cands, "roc_auc")
    assert (choice.champion.version, choice.challenger.version) == ("3", "2")


def test_gate_on_test_excludes_the_best_cv_version():
    cands = _gated(_c(1, 0.84, 0.85), _c(2, 0.86, 0.86), _c(3, 0.95, 0.90, f1=0.4))
    choice = choose(cands, "roc_auc")
    assert (choice.champion.version, choice.challenger.version) == ("2", "1")
    assert cands[2].failures == ["f1=0.4000 < 0.55"]


def test_no_passing_version_means_no_champion_and_no_challenger():
    choice = choose(_gated(_c(1, 0.9, 0.7)), "roc_auc")
    assert (choice.champion, choice.challenger) == (None, None)
    assert "no version passed the gate" in choice.note


def test_one_passing_version_has_no_challenger():
    choice = choose(_gated(_c(1, 0.9, 0.85), _c(2, 0.95, 0.7)), "roc_auc")
    assert choice.champion.version == "1" and choice.challenger is None


def test_lower_is_better_for_rmse_and_missing_cv_ranks_last():
    cands = [
        Candidate("1", "a", "r1", {"rmse": 0.6}, cv={"rmse": 0.8}),
        Candidate("2", "b", "r2", {"rmse": 0.9}, cv={"rmse": 0.7}),
        Candidate("3", "c", "r3", {"rmse": 0.5}),  # no cv_rmse logged
    ]
    apply_gate(cands, {"rmse": {"max": 1.0}})
    choice = choose(cands, "rmse")
    assert (choice.champion.version, choice.challenger.version) == ("2", "1")


def _current(test_auc, passed=True):
    return Candidate("9", "old", "run9", {"roc_auc": test_auc}, passed=passed)


def _compare(current, rows, best_auc):
    return lambda best: Comparison(current, rows, {"roc_auc": best_auc})


def test_current_champion_better_on_unseen_rows_is_kept_and_challenged():
    cands = _gated(_c(1, 0.84, 0.85), _c(2, 0.86, 0.86))
    choice = choose(cands, "roc_auc", _compare(_current(0.88), 500, best_auc=0.87))
    assert (choice.champion.version, choice.challenger.version) == ("9", "2")
    assert choice.comparison_rows == 500 and "500 test rows" in choice.note
    assert "champion kept" in choice.note


def test_new_best_not_worse_on_unseen_rows_is_promoted():
    cands = _gated(_c(1, 0.84, 0.85), _c(2, 0.86, 0.86))
    for best_auc in (0.88, 0.90):  # a tie is "not worse"
        choice = choose(cands, "roc_auc", _compare(_current(0.88), 500, best_auc))
        assert (choice.champion.version, choice.challenger.version) == ("2", "1")
        assert "promoted" in choice.note


def test_too_few_unseen_rows_fall_back_to_the_gate():
    cands = _gated(_c(1, 0.84, 0.85), _c(2, 0.86, 0.86))
    rows = MIN_COMPARISON_ROWS - 1
    choice = choose(cands, "roc_auc", _compare(_current(0.99), rows, best_auc=0.5))
    assert choice.champion.version == "2"
    assert f"only {rows} test rows" in choice.note and "gate alone" in choice.note


def test_current_champion_failing_the_gate_on_unseen_rows_cannot_hold_on():
    cands = _gated(_c(1, 0.84, 0.85))
    choice = choose(cands, "roc_auc", _compare(_current(0.99, passed=False), 500, best_auc=0.8))
    assert choice.champion.version == "1"


def _frame(n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "Age": rng.integers(18, 90, n),
            "Balance": rng.random(n) * 1000,
            "Geography": rng.choice(["France", "Spain"], n),
            "Exited": rng.integers(0, 2, n),
        }
    )


def test_unseen_rows_by_hash_of_all_shared_columns():
    trained_on, fresh = _frame(300, 0), _frame(100, 1)
    test = pd.concat([trained_on.iloc[:40], fresh], keys=["seen", "fresh"]).sample(
        frac=1, random_state=2
    )
    expected = test.index.get_level_values(0) == "fresh"
    # the champion's split stored Age as float: 42 and 42.0 are the same row
    mask = unseen_rows(test, trained_on.assign(Age=trained_on.Age.astype(float)), ["CustomerId"])
    np.testing.assert_array_equal(mask, expected)
    assert mask.sum() == 100


def test_unseen_rows_by_id_columns_when_both_keep_them():
    trained_on = _frame(50, 0).assign(CustomerId=range(50))
    test = _frame(20, 0).assign(CustomerId=range(40, 60))  # same features, other ids
    assert unseen_rows(test, trained_on, ["CustomerId"]).sum() == 10
