"""Training-reference bins: one bin per value for few-valued whole numbers, deciles otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd

from caretflow.drift import psi, training_reference
from caretflow.monitoring.feature_drift import feature_drift

SCHEMA = {"flag": {"type": "int"}, "count": {"type": "int"}, "amount": {"type": "float"}}


def _rows(n: int, flag_share: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"flag": (rng.random(n) < flag_share).astype(int),
                         "count": rng.choice([1, 2, 3, 4], n, p=[0.5, 0.45, 0.04, 0.01]),
                         "amount": rng.lognormal(3, 1, n)})


def test_few_valued_integers_get_one_bin_per_value_and_continuous_ones_deciles():
    ref = training_reference(_rows(5000, 0.2, 0), SCHEMA)
    assert ref["flag"]["values"] == [0, 1] and ref["flag"]["edges"] == [0.5]
    assert np.allclose(ref["flag"]["shares"], [0.8, 0.2], atol=0.02)
    assert ref["count"]["values"] == [1, 2, 3, 4] and len(ref["count"]["shares"]) == 4
    assert "values" not in ref["amount"] and len(ref["amount"]["shares"]) == 10


def test_a_flag_whose_share_flips_from_20_to_60_percent_has_a_large_psi():
    ref = training_reference(_rows(5000, 0.2, 0), SCHEMA)
    same, flipped = _rows(2000, 0.2, 1), _rows(2000, 0.6, 2)
    assert psi(ref["flag"], same["flag"]) < 0.01
    # (0.4 - 0.8) ln(0.4 / 0.8) + (0.6 - 0.2) ln(0.6 / 0.2) = 0.72
    assert psi(ref["flag"], flipped["flag"]) > 0.6
    drifted = feature_drift(ref["flag"], flipped["flag"], _rows(5000, 0.2, 0)["flag"])
    assert drifted["test"] == "chi-squared per value" and drifted["p_value"] < 1e-10
    assert feature_drift(ref["flag"], same["flag"])["p_value"] > 0.01
