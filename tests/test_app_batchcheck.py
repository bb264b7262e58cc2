"""The column-wise batch validator accepts only what pydantic accepts, with the same values."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from app.batchcheck import BatchChecker
from app.errors import field_errors
from app.schemas import build_models
from tests.app_helpers import RECORD, headers

BAD = {
    "bad category": ("Geography", "Atlantis"),
    "out of range": ("Age", 17),
    "above range": ("Balance", 1e12),
    "nan": ("Balance", float("nan")),
    "infinity": ("EstimatedSalary", float("inf")),
    "bool": ("HasCrCard", True),
    "string number": ("CreditScore", "619"),
    "float in int field": ("Tenure", 2.5),
    "beyond int64": ("CreditScore", 2**63),
    "int beyond float": ("Balance", 10**400),
    "below int64": ("CreditScore", -(2**63) - 1),
    "null feature": ("Age", None),
    "category not text": ("Gender", 1),
    "truth not 0/1": ("true_value", 2),
    "truth bool": ("true_value", True),
    "long routing key": ("CustomerId", "x" * 201),
    "routing key float": ("CustomerId", 1.5),
}


@pytest.fixture(scope="module")
def setup():
    from caretflow.config import compose
    from caretflow.inference.contract import from_dataset

    dataset = OmegaConf.to_container(compose(["profile=quick"]).dataset, resolve=True)
    contract = from_dataset(dataset, {"threshold": 0.5})  # what a churn model carries
    return BatchChecker(contract), build_models(contract, 5000)


def _batch(n: int = 50, **changes) -> dict:
    records = [dict(RECORD, Age=20 + i % 60, Balance=i if i % 2 else float(i),
                    CustomerId=15600000 + i if i % 3 else f"c{i}", Surname="Smith",
                    true_value=(None, 0, 1)[i % 3], extra="ignored") for i in range(n)]
    return {"records": records, **changes}


@pytest.mark.parametrize("n", [50, 3])  # numpy column checks, and value-by-value ones
@pytest.mark.parametrize("changes", [{}, {"version_name": "v2_random_forest"},
                                     {"enable_ab_testing": True}])
def test_good_batches_match_pydantic(setup, changes, n):
    checker, models = setup
    body = _batch(n, **changes)
    fast, slow = checker.check(body), models.batch.model_validate(body)
    assert fast is not None
    assert (fast.version_name, fast.enable_ab_testing) == (slow.version_name,
                                                           slow.enable_ab_testing)
    assert fast.size == len(slow.records)
    for i, want in enumerate(slow.records):
        for name, value in want.model_dump().items():
            if name == "true_value":
                got = fast.true_values[i]
            elif name in fast.columns:
                got = fast.columns[name][i]
            else:  # accepted but never used (an id column that is not the routing key)
                continue
            assert got == value and type(got) is type(value), name


@pytest.mark.parametrize("n", [50, 3])
def test_column_arrays_are_the_ones_numpy_makes_of_the_columns(setup, n):
    checker, _ = setup
    batch = checker.check(_batch(n))
    assert bool(batch.arrays) == (n > 3)  # long numeric columns hand over their arrays
    assert "Balance" in batch.arrays or n == 3  # a float column sent partly as ints
    for name, values in batch.columns.items():
        want, got = np.asarray(values), batch.array(name)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert np.array_equal(got, want), name


@pytest.mark.parametrize("n", [50, 3])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_values_are_left_to_pydantic(setup, case, n):
    checker, models = setup
    body = _batch(n)
    name, value = BAD[case]
    body["records"][n // 2][name] = value
    assert checker.check(body) is None
    with pytest.raises(Exception):  # noqa: B017 - pydantic rejects it too
        models.batch.model_validate(body)


@pytest.mark.parametrize("body", [
    {"records": []}, {"records": "x"}, {"records": [1, 2]},
    {"records": [dict(RECORD)], "version_name": ""},
    {"records": [dict(RECORD)], "enable_ab_testing": "yes"},
    {"records": [{k: v for k, v in RECORD.items() if k != "Age"}]},
])
def test_unusual_shapes_are_left_to_pydantic(setup, body):
    assert setup[0].check(body) is None


NOT_JSON = ("nan", "infinity", "int beyond float", "below int64")  # orjson refuses them (400)


@pytest.mark.parametrize("case", sorted(k for k in BAD if k not in NOT_JSON))
def test_endpoint_422_details_are_pydantics(setup, client, case):
    _, models = setup
    body = _batch(n=5)
    name, value = BAD[case]
    body["records"][3][name] = value
    body["records"][1].pop("Gender")  # a second error: every entry is reported
    r = client.post("/predict", json=body, headers=headers())
    assert r.status_code == 422, r.data[:300]
    try:
        models.batch.model_validate(body)
    except Exception as exc:  # noqa: BLE001 - the pydantic ValidationError
        expected = field_errors(exc)
    assert r.get_json()["details"] == expected


def test_endpoint_accepts_a_good_batch(client):
    body = _batch(n=200)
    r = client.post("/predict", json=body, headers=headers())
    assert r.status_code == 200, r.data[:300]
    assert len(r.get_json()["predictions"]) == 200
