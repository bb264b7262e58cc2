"""What the MLflow UI shows: model cards on registered versions, data inputs on step runs."""

from __future__ import annotations

from mlflow.tracking import MlflowClient


def test_every_version_reads_as_a_model_card_and_runs_link_their_data(tiny_registry):
    client = MlflowClient(tiny_registry["uri"])
    champion = str(client.get_model_version_by_alias("churn", "champion").version)
    versions = client.search_model_versions("name = 'churn'")
    assert versions
    for mv in versions:
        text = mv.description or ""
        assert text.startswith(f"### churn · {mv.tags['version_name']}"), text
        for part in ("**Model:**", "**Inputs:** 10 features", "schema digest",
                     "**Cross-validation (training split; chooses the champion):** ",
                     "roc_auc", "**Held-out test (reported, never used to choose):**",
                     "**Gate:** f1 >= 0.55, roc_auc >= 0.8", "**Role:**"):
            assert part in text, (part, text)
        role = text.rsplit("**Role:** ", 1)[1]
        assert role.startswith("champion:") == (str(mv.version) == champion), text
        run = client.get_run(mv.run_id)
        contexts = {i.tags[0].value for i in run.inputs.dataset_inputs if i.tags}
        assert "training" in contexts, run.inputs
