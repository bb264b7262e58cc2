"""What the MLflow UI shows: model cards on registered versions, data inputs on step runs."""

from __future__ import annotations

from pathlib import Path

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


def test_preprocess_logs_a_profile_of_the_data_and_its_split(tiny_registry, tmp_path):
    import mlflow

    client = MlflowClient(tiny_registry["uri"])
    run_id = tiny_registry["preprocess_run_id"]
    names = {a.path for a in client.list_artifacts(run_id, "data")}
    assert {"data/profile.html", "data/target.png", "data/features.png",
            "data/correlation.png", "data/reference.png", "data/reference.json"} <= names
    mlflow.set_tracking_uri(tiny_registry["uri"])
    page = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="data/profile.html",
                                               dst_path=str(tmp_path))
    html = Path(page).read_text()
    for section in ("target", "features", "correlation", "reference", "quality"):
        assert f"<section id='{section}'>" in html
    assert html.count("data:image/png;base64,") == 4
    assert "<td>CreditScore</td><td>int</td><td>0</td><td>0</td>" in html
