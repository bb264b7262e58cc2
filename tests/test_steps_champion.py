"""evaluate on the real pipeline: choose by CV, test only gates and reports, unseen-row rule."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from caretflow.config import compose
from steps.evaluate import evaluate
from steps.preprocess import load_split
from steps.train import train
from tests.conftest import TINY, build_registry

pytestmark = pytest.mark.slow
# A gate both tiny versions pass, so that the choice is left to the CV metric.
LOOSE = ["dataset.gate.roc_auc.min=0.6", "dataset.gate.f1.min=0.3"]
VERSIONS = ["v2_random_forest", "v4_xgboost"]


def _aliases(client: MlflowClient) -> dict[str, str]:
    return {alias: str(v) for alias, v in client.get_registered_model("churn").aliases.items()}


def _evaluate_run(client: MlflowClient, pre_id: str):
    exp = client.get_experiment_by_name("caretflow-churn").experiment_id
    return client.search_runs(
        [exp],
        f"tags.`caretflow.step` = 'evaluate' and tags.preprocess_run_id = '{pre_id}'",
        order_by=["attributes.start_time DESC"],
    )[0]


def test_champion_follows_cv_while_test_only_gates_and_a_stale_challenger_goes(tracking_store):
    info = build_registry("churn", VERSIONS, extra=LOOSE)
    client, pre = MlflowClient(), info["preprocess_run_id"]
    runs = {v: info["trained"][v]["run_id"] for v in VERSIONS}
    number = {v: info["trained"][v]["version"] for v in VERSIONS}
    test_auc = {v: client.get_run(runs[v]).data.metrics["test_roc_auc"] for v in VERSIONS}
    cv_auc = {v: client.get_run(runs[v]).data.metrics["cv_roc_auc"] for v in VERSIONS}
    assert info["evaluation"]["champion"] == number[max(cv_auc, key=cv_auc.get)]

    # Make the rankings disagree: the version worse on test gets the better CV score.
    worse, better = sorted(VERSIONS, key=test_auc.get)
    assert test_auc[worse] < test_auc[better]
    client.log_metric(runs[worse], "cv_roc_auc", max(cv_auc.values()) + 0.01)
    first_champion = info["evaluation"]["champion"]
    out = evaluate(compose(["dataset=churn", *TINY, *LOOSE, f"preprocess_run_id={pre}"]))
    assert (out["champion"], out["challenger"]) == (number[worse], number[better])
    assert out["table"]["version_name"].tolist() == [worse, better]  # ordered by CV
    assert out["table"]["test_roc_auc"].tolist() == [
        round(test_auc[worse], 4),
        round(test_auc[better], 4),
    ]
    aliases = _aliases(client)
    assert (aliases["champion"], aliases["challenger"]) == (number[worse], number[better])
    if first_champion != number[worse]:
        assert aliases["previous"] == first_champion
    assert out["comparison_rows"] is None  # the current champion is one of these versions

    # A gate only the test-better version passes: it is champion and nobody challenges it.
    cut = (test_auc[worse] + test_auc[better]) / 2
    gate = ["dataset.gate.f1.min=0.3", f"dataset.gate.roc_auc.min={cut}"]
    out = evaluate(compose(["dataset=churn", *TINY, *gate, f"preprocess_run_id={pre}"]))
    assert (out["champion"], out["challenger"]) == (number[better], None)
    aliases = _aliases(client)
    assert aliases["champion"] == number[better] and aliases["previous"] == number[worse]
    assert "challenger" not in aliases
    failed = client.get_model_version("churn", number[worse]).tags["gate"]
    assert failed.startswith("failed: roc_auc=")


def test_current_champion_is_compared_on_test_rows_it_never_trained_on(tracking_store):
    first = build_registry("churn", ["v2_random_forest"], extra=LOOSE)
    client = MlflowClient()
    old = str(client.get_model_version_by_alias("churn", "champion").version)

    bigger = ["dataset=churn", "profile=quick", "profile.max_rows=4000", *LOOSE]
    new = train(compose([*bigger, "version=v3_rf_tuned"]))
    pre = client.get_run(new["run_id"]).data.tags["preprocess_run_id"]
    assert pre != first["preprocess_run_id"]
    out = evaluate(compose([*bigger, f"preprocess_run_id={pre}"]))

    # Counted independently: new test rows that are not rows of the champion's training split.
    test = load_split(pre, "test")
    trained_on = load_split(first["preprocess_run_id"], "train").drop_duplicates()
    merged = test.merge(trained_on, how="left", indicator=True)
    unseen = int((merged["_merge"] == "left_only").sum())
    assert 200 <= unseen < len(test), "the two splits should overlap, leaving >= 200 rows"
    assert out["comparison_rows"] == unseen
    assert f"on {unseen} test rows unseen by current champion v{old}" in out["note"]
    run = _evaluate_run(client, pre)
    assert run.data.metrics["champion_comparison_rows"] == unseen
    assert run.data.tags["champion_choice"] == out["note"]

    aliases = _aliases(client)
    if out["note"].endswith("promoted"):
        assert (aliases["champion"], aliases["previous"]) == (new["version"], old)
    else:
        assert out["note"].endswith("champion kept")
        assert (aliases["champion"], aliases["challenger"]) == (old, new["version"])
