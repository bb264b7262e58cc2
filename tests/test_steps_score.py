"""Entry point `score`: validation, local streaming and Dask partitions, errors, MLflow run."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from caretflow.config import ROOT
from caretflow.fastpath import accelerate
from caretflow.inference.batch import BatchInputError
from caretflow.inference.validation import validate
from caretflow.launch import BIN, env_with
from caretflow.registry import load_model
from steps.score import ScoreError, score

SCHEMA = {"Age": {"type": "int", "min": 18, "max": 100},
          "Balance": {"type": "float", "min": 0, "max": 10},
          "Gender": {"type": "category", "categories": ["Female", "Male"]}}
# Rows made invalid in the generated file, and the reason each must get.
BAD = {3: ("Age", "abc", "Age: not a number (abc)"),
       10: ("Age", "150", "Age: 150 above max 100"),
       11: ("Age", "41.5", "Age: not an integer (41.5)"),
       777: ("Geography", "Italy", "Geography: unknown category Italy"),
       5000: ("CreditScore", None, "CreditScore: missing"),
       19_999: ("Tenure", "-1", "Tenure: -1 below min 0")}


def test_validate_gives_each_bad_row_its_first_reason():
    frame = pd.DataFrame({"Age": ["30", "abc", "31.5", "150", None, "40"],
                          "Balance": [1.0, 2.0, 3.0, 4.0, 5.0, np.inf],
                          "Gender": ["Male", "Male", "Female", "Female", "X", "Robot"]},
                         index=range(100, 106))
    valid, reasons = validate(frame, list(SCHEMA), SCHEMA)
    assert list(valid.index) == [100]
    assert valid.dtypes.to_dict() == {"Age": np.int64, "Balance": np.float64, "Gender": object}
    assert reasons.to_dict() == {101: "Age: not a number (abc)",
                                 102: "Age: not an integer (31.5)",
                                 103: "Age: 150 above max 100", 104: "Age: missing",
                                 105: "Balance: not a finite number"}


def test_validate_typed_columns_and_unknown_categories():
    frame = pd.DataFrame({"Age": [18, 100, 17], "Balance": [0.0, -0.5, 1.0],
                          "Gender": ["Female", "Male", "Male"]})
    frame.loc[3] = [40, 1.0, "Other"]
    valid, reasons = validate(frame, list(SCHEMA), SCHEMA)
    assert list(valid.index) == [0]
    assert reasons.to_dict() == {1: "Balance: -0.5 below min 0", 2: "Age: 17 below min 18",
                                 3: "Gender: unknown category Other (expected ['Female', 'Male'])"}


@pytest.fixture(scope="module")
def scoring_input(tmp_path_factory):
    """20k churn rows (the real table twice, fresh ids) with known bad rows; CSV + 3 Parquet."""
    root = tmp_path_factory.mktemp("score-input")
    raw = pd.read_csv(ROOT / "data" / "Churn_Modelling.csv")
    frame = pd.concat([raw, raw], ignore_index=True).drop(columns=["Exited"]).astype(object)
    frame["CustomerId"] = np.arange(len(frame)) + 1_000_000
    for row, (col, value, _) in BAD.items():
        frame.loc[row, col] = value
    frame.to_csv(root / "customers.csv", index=False)
    text = frame.astype(str).mask(frame.isna(), None)  # Parquet of text: validation types it
    for i, part in enumerate(np.array_split(text, 3)):
        part.to_parquet(root / f"part{i}.parquet")
    return {"root": root, "csv": root / "customers.csv", "rows": len(frame)}


@pytest.fixture
def registry_env(tiny_registry, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tiny_registry["uri"])
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    return tiny_registry


def _check_errors(path, rows=BAD) -> None:
    errors = pd.read_parquet(path)
    assert errors["row"].tolist() == sorted(rows)
    for row, reason in zip(errors["row"], errors["reason"], strict=True):
        assert reason.startswith(rows[row][2]), (row, reason)


@pytest.mark.slow
def test_score_local_streams_and_matches_the_model(registry_env, scoring_input, tmp_path):
    out = tmp_path / "scores.parquet"
    result = score("churn@champion", str(scoring_input["csv"]), str(out), keep="CustomerId",
                   overrides=["compute.chunk_rows=3000"])
    scored = pd.read_parquet(out)
    assert list(scored.columns) == ["prediction", "probability", "model_version",
                                    "version_name", "CustomerId"]
    n = scoring_input["rows"]
    assert len(scored) == n - len(BAD)
    _check_errors(f"{out}.errors.parquet")
    version = result["model_version"]
    assert set(scored["model_version"]) == {version}
    model = load_model(f"models:/churn/{version}")
    assert set(scored["version_name"]) == {model.version_name}
    good = pd.read_csv(scoring_input["csv"]).drop(index=list(BAD))
    assert scored["CustomerId"].tolist() == good["CustomerId"].tolist()
    expected = model.predict_details(good[model.contract["features"]].astype(
        {"Age": "int64", "CreditScore": "int64", "Tenure": "int64"}))
    np.testing.assert_array_equal(scored["prediction"], expected["prediction"])
    np.testing.assert_allclose(scored["probability"], expected["probability"], rtol=1e-12)
    run = MlflowClient().get_run(result["run_id"]).data
    assert run.metrics["rows_scored"] == n - len(BAD)
    assert run.metrics["rows_rejected"] == len(BAD)
    assert run.metrics["rows_per_second"] > 0
    assert run.params["model_version"] == version
    assert run.params["model_uri"] == f"models:/churn/{version}"
    # The verified fast path scored (not the pipeline as logged), on every core.
    assert run.params["scoring_path"] == accelerate(model).pipeline.kind
    assert run.params["predict_threads"] == str(os.cpu_count())
    assert run.tags["caretflow.step"] == "score" and len(run.tags["input_digest"]) == 64


@pytest.mark.slow
def test_score_dask_equals_local_csv_and_parquet_glob(registry_env, scoring_input, tmp_path,
                                                      dask_cluster):
    address = f"compute.address={dask_cluster.address}"
    local = tmp_path / "local"
    score("churn/1", str(scoring_input["csv"]), str(local), keep="CustomerId")
    expected = pd.read_parquet(local)
    # CSV in ~6 partitions over two workers, then a glob of three Parquet files.
    for name, source in (("csv", str(scoring_input["csv"])),
                         ("glob", str(scoring_input["root"] / "part*.parquet"))):
        out = tmp_path / f"dask-{name}"
        result = score("churn/1", source, str(out), keep="CustomerId", compute_name="dask",
                       overrides=[address, "compute.blocksize=400KB"])
        assert len(list(out.glob("part-*.parquet"))) >= 3
        got = pd.read_parquet(out)
        pd.testing.assert_frame_equal(got.drop(columns="CustomerId"),
                                      expected.drop(columns="CustomerId"))
        assert got["CustomerId"].astype(int).tolist() == expected["CustomerId"].tolist()
        _check_errors(f"{out}.errors.parquet")
        assert result["rows_rejected"] == len(BAD)


def test_unknown_model_is_a_clear_error(registry_env, scoring_input, tmp_path):
    for spec, match in (("churn@nope", "unknown model 'churn@nope'"),
                        ("nosuch/1", "unknown model 'nosuch/1'"),
                        ("churn", "expected name@alias or name/version")):
        with pytest.raises(ScoreError, match=match):
            score(spec, str(scoring_input["csv"]), str(tmp_path / "x.parquet"))


@pytest.mark.parametrize("threads", ["-1", "two", "1.5"])
def test_a_bad_predict_threads_is_a_clear_error(registry_env, scoring_input, tmp_path,
                                                threads):
    with pytest.raises(ScoreError, match="compute.predict_threads must be 0"):
        score("churn@champion", str(scoring_input["csv"]), str(tmp_path / "x.parquet"),
              overrides=[f"compute.predict_threads={threads}"])
    assert not (tmp_path / "x.parquet").exists()


def test_missing_columns_and_no_files_are_clear_errors(registry_env, scoring_input, tmp_path):
    lacking = tmp_path / "lacking.csv"
    pd.read_csv(scoring_input["csv"], nrows=20).drop(columns=["Age", "Geography"]).to_csv(
        lacking, index=False)
    with pytest.raises(BatchInputError, match=r"lacks columns \['Geography', 'Age'\]"):
        score("churn@champion", str(lacking), str(tmp_path / "x.parquet"))
    with pytest.raises(BatchInputError, match=r"lacks columns \['Surnames'\]"):
        score("churn@champion", str(scoring_input["csv"]), str(tmp_path / "x.parquet"),
              keep="Surnames")
    with pytest.raises(BatchInputError, match="no CSV or Parquet files match"):
        score("churn@champion", str(tmp_path / "nothing*.csv"), str(tmp_path / "x.parquet"))
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.slow
def test_mlflow_run_score_entry_point(tiny_registry, scoring_input, tmp_path):
    small = tmp_path / "small.csv"
    pd.read_csv(scoring_input["csv"], nrows=50).to_csv(small, index=False)
    out = tmp_path / "cli-out"
    def run(model: str):
        cmd = [str(BIN / "mlflow"), "run", ".", "-e", "score", "--env-manager", "local",
               "--experiment-name", "caretflow-churn", "-P", f"model={model}",
               "-P", f"input={small}", "-P", f"output={out}", "-P", "keep=CustomerId,Surname"]
        return subprocess.run(cmd, cwd=ROOT, env=env_with(tiny_registry["uri"]),
                              capture_output=True, text=True, timeout=300)

    proc = run("churn@champion")
    assert proc.returncode == 0, proc.stderr[-3000:]
    scored = pd.read_parquet(out)
    assert len(scored) == 50 - 3  # rows 3, 10, 11 of the file are bad
    assert list(scored.columns)[-2:] == ["CustomerId", "Surname"]
    bad = run("churn@nope")
    assert bad.returncode != 0 and "unknown model 'churn@nope'" in bad.stderr
