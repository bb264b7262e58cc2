"""One registered name, one contract: the server learns everything from the model it serves.

Versions registered directly (bypassing ``steps.train``) with another task, with no
contract, or answering outside their contract never serve beside the default: asked for,
they answer 409 (or 503 while unloadable), never 500. The registry going away answers 503
with ``Retry-After``. The server imports neither Hydra nor ``steps``.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from caretflow.launch import ROOT, MlflowServer, env_with
from tests.app_helpers import (
    ADMIN,
    RECORD,
    copy_registry,
    ensure_challenger,
    headers,
    running_app,
)

FORBIDDEN = ("hydra", "omegaconf", "steps")


def _error(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.data[:400])
    body = r.get_json()
    assert set(body) == {"error", "details"}
    return body


def _regression_churn_model(champion):
    """A churn model trained as regression (a shallow tree on Exited), with its own contract."""
    from sklearn.tree import DecisionTreeRegressor

    from caretflow.config import compose, to_container
    from caretflow.data.tables import load_raw
    from caretflow.inference.contract import from_dataset
    from caretflow.inference.model import CaretflowModel
    from caretflow.modelling.build import make_pipeline

    cfg = compose(["profile=quick"])
    ds = to_container(cfg, "dataset")
    raw = load_raw(cfg.dataset).head(500)
    pipeline = make_pipeline(cfg, DecisionTreeRegressor(max_depth=3, random_state=0),
                             "regression").fit(raw[list(ds["schema"])],
                                               raw[ds["target"]].astype(float))
    decision = {"interval_method": "fixed", "interval_level": 0.9}
    contract = from_dataset({**ds, "task": "regression", "target_range": [0.0, 1.0]}, decision)
    return CaretflowModel(pipeline=pipeline, task="regression", interval_halfwidth=0.3,
                          interval_level=0.9, target_range=[0.0, 1.0],
                          input_schema=ds["schema"], reference=champion.reference,
                          version_name="legacy_regression", contract=contract)


def _legacy_models(champion) -> dict:
    no_contract = copy.copy(champion)
    no_contract.contract, no_contract.version_name = None, "legacy_none"
    lying = copy.copy(champion)  # says classification, answers regression outputs
    lying.task, lying.interval_halfwidth, lying.version_name = "regression", 0.1, "legacy_lying"
    return {"legacy_regression": _regression_churn_model(champion),
            "legacy_none": no_contract, "legacy_lying": lying}


@pytest.fixture(scope="module")
def legacy_uri(tiny_registry, tmp_path_factory):
    """A registry copy with three extra churn versions registered by hand (alias = name).

    ``log_and_register`` now refuses a version of another contract; these stand for versions
    registered before it did (or by hand), so its check is skipped here.
    """
    from mlflow.tracking._tracking_service import utils

    from caretflow import registry

    tmp = tmp_path_factory.mktemp("legacy")
    uri = copy_registry(tiny_registry, tmp / "registry")
    ensure_challenger(uri)
    saved = utils._tracking_uri
    mlflow.set_tracking_uri(uri)
    try:
        exp = MlflowClient(uri).create_experiment(
            "legacy", artifact_location=(tmp / "artifacts").as_uri())
        champion = registry.load_model("models:/churn@champion")
        example = pd.DataFrame([RECORD] * 5)
        with pytest.MonkeyPatch.context() as patch:  # as registered before train refused it
            patch.setattr(registry, "check_contract", lambda name, contract: None)
            for name, model in _legacy_models(champion).items():
                with mlflow.start_run(experiment_id=exp):
                    registry.log_and_register(model, example, "churn", name,
                                              {"version_name": name})
    finally:
        mlflow.set_tracking_uri(saved)
    return uri


@pytest.fixture(scope="module")
def legacy_app(legacy_uri, tmp_path_factory):
    with running_app({}, tmp_path_factory.mktemp("legacy_app"), MLFLOW_TRACKING_URI=legacy_uri,
                     BACKGROUND=False) as app:
        yield app


def _version(app, alias: str) -> str:
    return app.extensions["caretflow"].store.resolve(alias)


@pytest.mark.parametrize("legacy, reason", [
    ("legacy_regression", "task 'classification' vs 'regression'"),
    ("legacy_none", "carries no contract"),
])
def test_a_version_of_another_contract_answers_409_naming_both(legacy_app, legacy, reason):
    st, c = legacy_app.extensions["caretflow"], legacy_app.test_client()
    default, version = st.store.default, _version(legacy_app, legacy)
    for body in ({**RECORD, "version_name": legacy},
                 {"records": [RECORD, RECORD], "version_name": version}):
        err = _error(c.post("/predict", json=body, headers=headers()), 409)
        assert f"version {version} ({legacy})" in err["error"]
        assert f"serving version {default.version} ({default.version_name})" in err["error"]
        assert any(reason in d for d in err["details"]), err
    err = _error(c.post(f"/load_version/{legacy}", headers=headers(ADMIN)), 409)
    assert legacy in err["error"] and any(reason in d for d in err["details"])
    champion = st.store.client.get_model_version_by_alias("churn", "champion")
    assert str(champion.version) == default.version == st.store.default.version  # unchanged
    rows = {v["version_name"]: v for v in
            c.get("/versions", headers=headers()).json["versions"]}
    assert any(reason in d for d in rows[legacy]["contract_mismatch"])
    assert rows[default.version_name]["contract_mismatch"] == []


def test_a_challenger_of_another_contract_is_not_used_for_ab(legacy_app, caplog):
    st, c = legacy_app.extensions["caretflow"], legacy_app.test_client()
    client, before = st.store.client, st.store.aliases["challenger"]
    client.set_registered_model_alias("churn", "challenger", _version(legacy_app,
                                                                      "legacy_regression"))
    try:
        st.store.refresh()
        assert st.store.challenger is None and "not used for A/B" in caplog.text
        problem = c.get("/versions", headers=headers()).json["challenger_not_used"]
        assert problem["version"] == _version(legacy_app, "legacy_regression")
        assert any("task" in r for r in problem["reasons"])
        records = [{**RECORD, "CustomerId": i} for i in range(60)]
        answers = c.post("/predict", json={"records": records, "enable_ab_testing": True},
                         headers=headers()).json["predictions"]
        assert {(a["arm"], a["model_version"]) for a in answers} == {
            ("champion", st.store.default.version)}
    finally:
        client.set_registered_model_alias("churn", "challenger", before)
        st.store.refresh()
    assert st.store.challenger is not None and st.store.challenger_problem is None


def test_a_model_answering_outside_its_contract_never_serves(legacy_app):
    st, c = legacy_app.extensions["caretflow"], legacy_app.test_client()
    version = _version(legacy_app, "legacy_lying")
    err = _error(c.post("/predict", json={**RECORD, "version_name": "legacy_lying"},
                        headers=headers()), 503)
    assert "cannot be loaded" in err["error"]
    assert "must answer" in c.get("/health").json["load_errors"][version]
    _error(c.post(f"/load_version/{version}", headers=headers(ADMIN)), 409)
    assert c.post("/predict", json=RECORD, headers=headers()).json["model_version"] == (
        st.store.default.version)


def test_live_metrics_are_the_test_metrics_of_the_feedback(legacy_app):
    from caretflow.metrics import classification_metrics

    st, c = legacy_app.extensions["caretflow"], legacy_app.test_client()
    records = [{**RECORD, "Age": 20 + i, "true_value": i % 2} for i in range(40)]
    answers = c.post("/predict", json={"records": records}, headers=headers()).json
    y = [r["true_value"] for r in records]
    proba = [a["probability"] for a in answers["predictions"]]
    want = classification_metrics(y, proba, st.contract["decision"]["threshold"])
    health = c.get("/model_health", headers=headers()).json["versions"]
    live = next(v for v in health if v["version"] == st.store.default.version)["live_metrics"]
    for name in ("tn", "fp", "fn", "tp", "accuracy", "f1", "roc_auc"):
        assert live[f"live_{name}"] == pytest.approx(want[name]), name


@pytest.mark.slow  # a real mlflow server, stopped (~20 s)
def test_load_version_while_the_registry_is_unreachable_is_503(tiny_registry, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    backend = copy_registry(tiny_registry, tmp_path / "backend")
    ensure_challenger(backend)
    server = MlflowServer(tmp_path / "mlflow", backend).start(90)
    try:
        with running_app({}, tmp_path, MLFLOW_TRACKING_URI=server.url, BACKGROUND=False) as app:
            c, st = app.test_client(), app.extensions["caretflow"]
            other = st.store.challenger.version_name
            server.stop()
            for path in (f"/load_version/{other}", "/load_version/7"):  # cached alias, lookup
                r = c.post(path, headers=headers(ADMIN))
                err = _error(r, 503)
                assert r.headers["Retry-After"] and "registry unreachable" in err["error"]
            r = c.post("/predict", json={**RECORD, "version_name": "7"}, headers=headers())
            assert _error(r, 503) and r.headers["Retry-After"]
            assert c.post("/predict", json=RECORD, headers=headers()).status_code == 200
    finally:
        server.stop()


IMPORT_CHECK = """
import json, sys
from app import create_app
app = create_app(json.loads(sys.argv[1]))
answer = app.test_client().post("/predict", json=json.loads(sys.argv[2]),
                                headers={"X-API-Key": "k"})
app.extensions["caretflow"].stop()
print(json.dumps({"status": answer.status_code, "modules": sorted(
    m for m in sys.modules if m.split(".")[0] in ("hydra", "omegaconf", "steps"))}))
"""


def test_create_app_imports_neither_hydra_nor_steps(tiny_registry, tmp_path):
    uri = copy_registry(tiny_registry, tmp_path / "registry")
    settings = {"API_KEYS": "k", "BACKGROUND": False, "MLFLOW_TRACKING_URI": uri,
                "PREDICTION_DB_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    out = subprocess.run([sys.executable, "-c", IMPORT_CHECK, json.dumps(settings),
                          json.dumps(RECORD)], cwd=ROOT, env=env_with(uri),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"status": 200, "modules": []}, result


def test_no_module_under_app_names_hydra_steps_or_the_config_modules():
    banned = ("hydra", "omegaconf", "steps", "caretflow.config", "caretflow.tracking",
              "caretflow.cache")
    for path in (ROOT / "app").rglob("*.py"):
        for line in path.read_text().splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1:
                module = words[1]
                assert not any(module == b or module.startswith(f"{b}.") for b in banned), (
                    path, line)

