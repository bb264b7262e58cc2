"""Platt scaling on out-of-fold probabilities: order kept, probabilities calibrated."""

from __future__ import annotations

import numpy as np
import pytest

from caretflow.inference import calibration
from caretflow.metrics import calibration_metrics


def test_platt_fixes_inflated_probabilities_and_keeps_their_order():
    rng = np.random.default_rng(0)
    true_p = rng.beta(1, 4, 20000)
    y = (rng.random(20000) < true_p).astype(int)
    inflated = true_p ** 0.5  # what oversampling does to a model's probability of 1
    cal = calibration.fit("platt", y[:10000], inflated[:10000])
    assert cal["method"] == "platt" and cal["a"] > 0
    fixed = calibration.apply(cal, inflated[10000:])
    assert np.array_equal(np.argsort(fixed, kind="stable"),
                          np.argsort(inflated[10000:], kind="stable"))
    before = calibration_metrics(y[10000:], inflated[10000:])["ece"]
    after = calibration_metrics(y[10000:], fixed)["ece"]
    assert before > 0.1 and after < 0.02


def test_none_keeps_the_probabilities_and_unknown_methods_are_refused():
    p = np.array([0.0, 0.3, 1.0])
    assert calibration.fit("none", [0, 1, 1], p) is None
    assert np.array_equal(calibration.apply(None, p), p)
    with pytest.raises(ValueError, match="unknown probability calibration"):
        calibration.fit("isotonic-ish", [0, 1], [0.2, 0.8])
