"""MLflow's scoring protocol (/invocations, /ping, /version) and the key in Authorization.

The fast tests compare /invocations with what MLflow's own pyfunc ``predict`` answers for
the registered champion; the slow one runs MLflow's ``ScoringServerClient`` against a real
gunicorn and a real ``mlflow models serve`` on the same model and rows.
"""

from __future__ import annotations

import base64
import io

import mlflow
import pandas as pd
import pytest

from caretflow.fastpath import probe_columns
from caretflow.launch import BIN, ServerProcess, env_with, free_port
from tests.app_helpers import ADMIN, CLIENT, RECORD, copy_registry, headers, start_gunicorn


def _basic(password: str, user: str = "anyone") -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def rows_of(app, n: int = 40, seed: int = 7) -> pd.DataFrame:
    """Valid random rows of the serving contract, plus the documented example record."""
    contract = app.extensions["caretflow"].contract
    schema = {c: contract["schema"][c] for c in contract["features"]}
    frame = pd.DataFrame(probe_columns(schema, n=n, seed=seed))
    return pd.concat([pd.DataFrame([RECORD])[list(schema)], frame], ignore_index=True)


@pytest.fixture(scope="module")
def rows(shared_app) -> pd.DataFrame:
    return rows_of(shared_app)


@pytest.fixture(scope="module")
def pyfunc_answer(shared_app, rows) -> list:
    """What MLflow's own pyfunc ``predict`` of ``models:/churn@champion`` answers for ``rows``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
        model = mlflow.pyfunc.load_model("models:/churn@champion")
        return pd.Series(model.predict(rows)).tolist()


def _bodies(rows: pd.DataFrame) -> dict:
    records = rows.to_dict(orient="records")
    columns = rows.to_dict(orient="list")
    parquet = io.BytesIO()
    rows.to_parquet(parquet)
    return {
        "dataframe_split": ("application/json", {"dataframe_split": rows.to_dict(orient="split")}),
        "dataframe_records": ("application/json", {"dataframe_records": records}),
        "instances_records": ("application/json", {"instances": records}),
        "instances_columns": ("application/json", {"instances": columns}),
        "inputs_columns": ("application/json", {"inputs": columns}),
        "inputs_records": ("application/json; charset=utf-8", {"inputs": records}),
        "csv": ("text/csv", rows.to_csv(index=False)),
        "parquet": ("application/vnd.apache.parquet", parquet.getvalue()),
    }


def _post(client, content_type, body, hdrs=None):
    hdrs = headers() if hdrs is None else hdrs
    if isinstance(body, dict | list):
        return client.post("/invocations", json=body,
                           headers={**hdrs, "Content-Type": content_type})
    return client.post("/invocations", data=body, content_type=content_type, headers=hdrs)


def test_every_input_format_answers_what_mlflow_pyfunc_predicts(client, rows, pyfunc_answer):
    assert set(pyfunc_answer) == {0, 1}  # both classes among the rows: a real comparison
    batch = client.post("/predict", json={"records": rows.to_dict(orient="records")},
                        headers=headers()).json["predictions"]
    assert [a["prediction"] for a in batch] == pyfunc_answer
    for name, (content_type, body) in _bodies(rows).items():
        r = _post(client, content_type, body)
        assert r.status_code == 200, (name, r.json)
        assert r.json == {"predictions": pyfunc_answer}, name
        assert len(r.headers["X-Request-Id"]) == 28


def test_one_record_of_scalars_is_one_row(client, pyfunc_answer):
    r = _post(client, "application/json", {"inputs": RECORD})
    assert r.status_code == 200 and r.json == {"predictions": pyfunc_answer[:1]}


def test_predictions_are_logged_under_request_id_plus_position(client, shared_app):
    records = [RECORD, {**RECORD, "Age": 30}, {**RECORD, "Age": 60}]
    r = _post(client, "application/json", {"dataframe_records": records})
    rid = r.headers["X-Request-Id"]
    fb = client.post("/feedback", json=[{"prediction_id": f"{rid}0002", "true_value": 1}],
                     headers=headers())
    assert fb.status_code == 201, fb.json
    champion = shared_app.extensions["caretflow"].store.default.version
    assert fb.json["feedback"] == [{"prediction_id": f"{rid}0002", "model_version": champion}]
    assert client.post("/feedback", json={"prediction_id": f"{rid}0003", "true_value": 1},
                       headers=headers()).status_code == 404


def test_params_pick_the_version_and_unknown_versions_are_404(client, shared_app):
    challenger = shared_app.extensions["caretflow"].store.challenger.version
    r = _post(client, "application/json",
              {"dataframe_records": [RECORD], "params": {"version_name": "challenger"}})
    assert r.status_code == 200
    fb = client.post("/feedback", json={"prediction_id": r.headers["X-Request-Id"] + "0000",
                                        "true_value": 0}, headers=headers())
    assert fb.json["feedback"][0]["model_version"] == challenger
    r = _post(client, "application/json",
              {"dataframe_records": [RECORD], "params": {"version_name": "no_such_version"}})
    assert r.status_code == 404 and r.json["error_code"] == "RESOURCE_DOES_NOT_EXIST"


MALFORMED = [
    ("application/json", b"{not json", 400),
    ("application/json", b"\xff\xfe", 400),
    ("application/json", [RECORD], 400),
    ("application/json", {"records": [RECORD]}, 400),
    ("application/json", {"dataframe_records": [RECORD], "inputs": [RECORD]}, 400),
    ("application/json", {"dataframe_records": RECORD}, 400),
    ("application/json", {"dataframe_records": [RECORD, 3]}, 400),
    ("application/json", {"dataframe_split": {"data": [[1, 2]]}}, 400),
    ("application/json", {"dataframe_split": {"columns": ["Age"], "data": [[1, 2]]}}, 400),
    ("application/json", {"dataframe_split": {"columns": ["Age"], "data": [[1]], "x": 1}}, 400),
    ("application/json", {"dataframe_split": [[1]]}, 400),
    ("application/json", {"inputs": {"Age": [1, 2], "Tenure": [1]}}, 400),
    ("application/json", {"inputs": {"Age": [1], "Tenure": 1}}, 400),
    ("application/json", {"inputs": [[1, 2]]}, 400),
    ("application/json", {"dataframe_records": [RECORD], "params": [1]}, 400),
    ("text/csv", b"", 400),
    ("text/csv", b"Age,Tenure\n1,2,3\n", 400),
    ("text/csv", b"Age,Tenure\n\xff,1\n", 400),
    ("application/vnd.apache.parquet", b"PAR1 not parquet", 400),
    ("text/plain", b"Age\n1\n", 415),
    ("application/xml", b"<a/>", 415),
    ("application/json; charset=latin-1", b'{"inputs": {}}', 415),
    ("application/json; format=pandas-split", b'{"inputs": {}}', 415),
    ("", b"", 415),
    ("application/json", {"dataframe_records": []}, 422),
    ("application/json", {"dataframe_records": [{**RECORD, "Age": "abc"}]}, 422),
    ("application/json", {"dataframe_records": [{**RECORD, "Geography": "Atlantis"}]}, 422),
    ("application/json", {"dataframe_records": [{**RECORD, "Age": True}]}, 422),
    ("application/json", {"dataframe_records": [{**RECORD, "Balance": 1e400}]}, 400),
    ("application/json", {"dataframe_records": [RECORD],
                          "params": {"enable_ab_testing": "maybe"}}, 422),
    ("text/csv", b"Age,Tenure\n1,2\n", 422),
    ("text/csv", ("\n".join([",".join(RECORD), ",".join(map(str, RECORD.values()))])
                  .replace("619", "nan")).encode(), 422),
]


@pytest.mark.parametrize(("content_type", "body", "status"), MALFORMED)
def test_malformed_requests_are_client_errors_never_500(client, content_type, body, status):
    r = _post(client, content_type, body)
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.is_json and isinstance(r.json["error"], str) and r.json["message"] == r.json["error"]
    assert r.json["error_code"] in {"BAD_REQUEST", "INVALID_PARAMETER_VALUE"}


def test_bad_rows_are_explained_as_predict_explains_them(client):
    bad = [RECORD, {**RECORD, "Age": "forty"}, {k: v for k, v in RECORD.items() if k != "Tenure"}]
    r = _post(client, "application/json", {"dataframe_records": bad})
    assert r.status_code == 422
    assert [d["field"] for d in r.json["details"]] == ["records.1.Age", "records.2.Tenure"]
    assert "forty" not in r.get_data(as_text=True)  # inputs are never echoed
    same = client.post("/predict", json={"records": bad}, headers=headers())
    assert r.json["details"] == same.json["details"]  # nothing said beyond what /predict says


def test_the_key_may_be_a_bearer_token_or_the_basic_password(client):
    body = {"dataframe_records": [RECORD]}
    for creds in ({"Authorization": f"Bearer {CLIENT}"}, _basic(CLIENT), _basic(CLIENT, ""),
                  {"X-API-Key": CLIENT, "Authorization": "Bearer wrong"}):
        assert _post(client, "application/json", body, creds).status_code == 200, creds
    for creds in ({}, {"Authorization": "Bearer wrong"}, _basic("wrong"), _basic("", CLIENT),
                  {"Authorization": f"Token {CLIENT}"}, {"Authorization": "Basic !!"},
                  {"X-API-Key": "wrong", "Authorization": f"Bearer {CLIENT}"}):
        r = _post(client, "application/json", body, creds)
        assert r.status_code == 401 and r.json["error_code"] == "UNAUTHENTICATED", creds
        assert "Basic" in r.headers["WWW-Authenticate"]
    # roles are unchanged: a client key is refused on an admin route, an admin key is not
    assert client.post("/load_version/no_such", headers={"Authorization": f"Bearer {CLIENT}"}
                       ).status_code == 403
    assert client.post("/load_version/no_such", headers=_basic(ADMIN)).status_code == 404


def test_ping_and_version_need_no_key(client):
    assert client.get("/ping").status_code == 200
    r = client.get("/version")
    assert r.status_code == 200 and r.get_data(as_text=True) == mlflow.__version__


@pytest.mark.slow
def test_mlflow_scoring_client_gets_the_same_from_both_servers(tiny_registry, tmp_path,
                                                               monkeypatch, rows):
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    uri = copy_registry(tiny_registry, tmp_path / "registry")
    port = free_port()
    command = [str(BIN / "mlflow"), "models", "serve", "-m", "models:/churn@champion",
               "--env-manager", "local", "-w", "1", "-h", "127.0.0.1", "-p", str(port)]
    reference = ServerProcess("mlflow-serve", command, tmp_path,
                              env_with(uri, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true"), port,
                              health_path="/ping", group=True)
    ours = start_gunicorn(tmp_path, uri, workers=1)
    with ours, reference.start(180):
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine 127.0.0.1\nlogin caretflow\npassword {CLIENT}\n")
        netrc.chmod(0o600)
        mlflow_client = ScoringServerClient("127.0.0.1", reference.port)
        caretflow_client = ScoringServerClient("127.0.0.1", ours.port)
        with pytest.raises(Exception, match="error code 401"):
            caretflow_client.invoke(rows)  # no key yet: the netrc file is what authenticates
        monkeypatch.setenv("NETRC", str(netrc))
        for client in (mlflow_client, caretflow_client):
            client.wait_server_ready(timeout=30)
        assert caretflow_client.get_version() == mlflow_client.get_version()
        want = mlflow_client.invoke(rows).get_predictions()
        got = caretflow_client.invoke(rows).get_predictions()
        assert set(want.iloc[:, 0]) == {0, 1}
        pd.testing.assert_frame_equal(got, want)
