"""Open Inference Protocol v2 (REST) for churn and ratings; ``tritonclient`` as the client.

The fast tests use the in-process apps (and tritonclient's own request encoder for binary
tensors); the slow one runs ``tritonclient.http`` against real gunicorn servers.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from caretflow.fastpath import probe_columns
from tests.app_helpers import CLIENT, copy_registry, headers, start_gunicorn

V2_TYPES = {"int": "INT64", "float": "FP64", "category": "BYTES"}
NUMPY = {"INT64": np.int64, "FP64": np.float64, "BYTES": np.object_}


def _contract(app) -> dict:
    return app.extensions["caretflow"].contract


def columns_of(app, n: int = 30, seed: int = 11) -> dict[str, list]:
    """Valid random rows of the serving contract, as one list per feature."""
    contract = _contract(app)
    schema = {c: contract["schema"][c] for c in contract["features"]}
    return {c: v.tolist() for c, v in probe_columns(schema, n=n, seed=seed).items()}


def tensors(app, cols: dict) -> list[dict]:
    schema = _contract(app)["schema"]
    return [{"name": c, "shape": [len(v)], "datatype": V2_TYPES[schema[c]["type"]], "data": v}
            for c, v in cols.items()]


def predict_answers(client, cols: dict) -> list[dict]:
    """What /predict answers for the same rows."""
    records = [dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)]
    r = client.post("/predict", json={"records": records}, headers=headers())
    assert r.status_code == 200, r.json
    return r.json["predictions"]


def _outputs(body: dict) -> dict:
    return {o["name"]: o["data"] for o in body["outputs"]}


def test_health_and_server_metadata_need_no_key(client):
    assert client.get("/v2/health/live").json == {"live": True}
    assert client.get("/v2/health/ready").json == {"ready": True}
    assert client.get("/v2/models/churn/ready").json == {"name": "churn", "ready": True}
    assert client.get("/v2/models/churn/versions/challenger/ready").status_code == 200
    assert client.get("/v2").json["name"] == "caretflow"


@pytest.mark.parametrize("app_name", ["shared_app", "ratings_app"])
def test_model_metadata_is_the_contract_schema(request, app_name):
    app = request.getfixturevalue(app_name)
    contract, name = _contract(app), app.extensions["caretflow"].store.name
    c = app.test_client()
    meta = c.get(f"/v2/models/{name}", headers=headers()).json
    assert meta["name"] == name and meta["platform"] == "caretflow"
    assert meta["inputs"] == [{"name": f, "datatype": V2_TYPES[contract["schema"][f]["type"]],
                               "shape": [-1]} for f in contract["features"]]
    outputs = ({"prediction": "INT64", "probability": "FP64"}
               if contract["task"] == "classification"
               else {"prediction": "FP64", "lower": "FP64", "upper": "FP64"})
    assert {o["name"]: o["datatype"] for o in meta["outputs"]} == outputs
    champion = app.extensions["caretflow"].store.default.version
    for version in ("champion", champion):
        one = c.get(f"/v2/models/{name}/versions/{version}", headers=headers()).json
        assert one["versions"] == [champion] and one["inputs"] == meta["inputs"]


def test_unknown_models_and_versions_are_404_with_the_protocol_error(client):
    for path in ("/v2/models/nope", "/v2/models/churn/versions/99", "/v2/models/nope/ready",
                 "/v2/models/churn/versions/no_alias/ready"):
        r = client.get(path, headers=headers())
        assert r.status_code == 404 and isinstance(r.json["error"], str), path
    r = client.post("/v2/models/nope/infer", json={"inputs": []}, headers=headers())
    assert r.status_code == 404 and isinstance(r.json["error"], str)


@pytest.mark.parametrize("app_name", ["shared_app", "ratings_app"])
def test_infer_answers_what_predict_answers(request, app_name):
    app = request.getfixturevalue(app_name)
    c, name, cols = app.test_client(), app.extensions["caretflow"].store.name, columns_of(app)
    r = c.post(f"/v2/models/{name}/infer", json={"id": "req-1", "inputs": tensors(app, cols)},
               headers=headers())
    assert r.status_code == 200, r.json
    body, want = r.json, predict_answers(c, cols)
    assert body["id"] == "req-1" and body["model_name"] == name
    assert body["model_version"] == want[0]["model_version"]
    assert body["parameters"]["request_id"] == r.headers["X-Request-Id"]
    out = _outputs(body)
    assert out["prediction"] == [a["prediction"] for a in want]
    if "probability" in out:
        assert out["probability"] == [a["probability"] for a in want]
        assert set(out["prediction"]) == {0, 1}
    else:
        assert out["lower"] == [a["interval"]["lower"] for a in want]
        assert out["upper"] == [a["interval"]["upper"] for a in want]
    assert all(o["shape"] == [len(cols[next(iter(cols))])] for o in body["outputs"])


def test_nested_data_requested_outputs_and_a_version_by_alias(client, shared_app):
    cols = columns_of(shared_app, n=4)
    inputs = [{**t, "shape": [4, 1], "data": [[v] for v in t["data"]]}
              for t in tensors(shared_app, cols)]
    challenger = shared_app.extensions["caretflow"].store.challenger.version
    r = client.post("/v2/models/churn/versions/challenger/infer",
                    json={"inputs": inputs, "outputs": [{"name": "probability"}]},
                    headers={"Authorization": f"Bearer {CLIENT}"})
    assert r.status_code == 200, r.json
    assert r.json["model_version"] == challenger
    assert [o["name"] for o in r.json["outputs"]] == ["probability"]


def test_routing_key_as_an_optional_input_splits_an_ab_request(client, shared_app):
    store = shared_app.extensions["caretflow"].store
    cols = columns_of(shared_app, n=60)
    inputs = [*tensors(shared_app, cols), {"name": "CustomerId", "shape": [60],
                                           "datatype": "INT64",
                                           "data": list(range(15634600, 15634660))}]
    r = client.post("/v2/models/churn/infer", headers=headers(),
                    json={"inputs": inputs, "parameters": {"enable_ab_testing": True}})
    assert r.status_code == 200, r.json
    arms = sorted({store.default.version, store.challenger.version}, key=int)
    assert r.json["model_version"] == ",".join(arms)  # both arms answered, ids decide
    again = client.post("/v2/models/churn/infer", headers=headers(),
                        json={"inputs": inputs, "parameters": {"enable_ab_testing": True}})
    assert _outputs(again.json) == _outputs(r.json)  # same customers, same arms


def test_binary_tensors_as_tritonclient_encodes_them(client, shared_app):
    from tritonclient.http import InferenceServerClient, InferInput, InferRequestedOutput

    cols = columns_of(shared_app, n=12)
    inputs = []
    for t in tensors(shared_app, cols):
        tensor = InferInput(t["name"], t["shape"], t["datatype"])
        tensor.set_data_from_numpy(np.array(t["data"], dtype=NUMPY[t["datatype"]]))  # binary
        inputs.append(tensor)
    body, json_size = InferenceServerClient.generate_request_body(
        inputs, outputs=[InferRequestedOutput("prediction")])
    r = client.post("/v2/models/churn/infer", data=body, headers={
        **headers(), "Inference-Header-Content-Length": str(json_size)})
    assert r.status_code == 200, r.json
    assert _outputs(r.json) == {"prediction": [a["prediction"]
                                               for a in predict_answers(client, cols)]}


def _bad_requests(app) -> list[tuple[str, dict | bytes]]:
    good = tensors(app, columns_of(app, n=3))

    def change(i, **kw):
        return {"inputs": [{**t, **kw} if k == i else t for k, t in enumerate(good)]}

    return [
        ("missing input", {"inputs": good[1:]}),
        ("wrong datatype", change(0, datatype="FP32")),
        ("shape vs data", change(0, shape=[4])),
        ("bad shape", change(0, shape=[3, 2])),
        ("no data", {"inputs": [{k: v for k, v in t.items() if k != "data"} for t in good]}),
        ("bad category", change(1, data=["Atlantis"] * 3)),
        ("text for a number", change(0, data=["x", 1, 2])),
        ("unknown input", {"inputs": [*good, {**good[0], "name": "Salary"}]}),
        ("twice", {"inputs": [*good, good[0]]}),
        ("rows differ", {"inputs": [{**good[0], "shape": [1], "data": good[0]["data"][:1]},
                                    *good[1:]]}),
        ("unknown output", {"inputs": good, "outputs": [{"name": "logit"}]}),
        ("not an object", b"[1, 2]"),
        ("malformed JSON", b"{inputs"),
        ("inputs not a list", {"inputs": {"Age": [1]}}),
        ("binary size too big", change(0, parameters={"binary_data_size": 10**6})),
    ]


def test_bad_tensors_are_400_with_the_protocol_error(client, shared_app):
    for what, body in _bad_requests(shared_app):
        kw = {"data": body} if isinstance(body, bytes) else {"json": body}
        r = client.post("/v2/models/churn/infer", headers=headers(), **kw)
        assert r.status_code == 400, (what, r.json)
        assert isinstance(r.json["error"], str) and set(r.json) == {"error", "details"}, what
    bad = _bad_requests(shared_app)[5][1]
    error = client.post("/v2/models/churn/infer", json=bad, headers=headers()).json["error"]
    assert "Geography[0]" in error and "Atlantis" not in error  # which element; no echo


def test_infer_and_metadata_need_a_key(client, shared_app):
    body = {"inputs": tensors(shared_app, columns_of(shared_app, n=1))}
    for r in (client.post("/v2/models/churn/infer", json=body), client.get("/v2/models/churn"),
              client.get("/v2/models/churn", headers={"Authorization": "Bearer wrong"})):
        assert r.status_code == 401 and isinstance(r.json["error"], str)


@pytest.mark.slow
def test_tritonclient_against_gunicorn(tiny_registry, ratings_uri, tmp_path, shared_app,
                                       ratings_app):
    import tritonclient.http as triton
    from tritonclient.http.auth import BasicAuth
    from tritonclient.utils import InferenceServerException

    churn_uri = copy_registry(tiny_registry, tmp_path / "churn-registry")
    ratings_copy = copy_registry({"uri": ratings_uri}, tmp_path / "ratings-registry")
    with contextlib.ExitStack() as stack:
        servers = [
            (stack.enter_context(start_gunicorn(tmp_path / "churn", churn_uri, workers=1)),
             shared_app, "churn"),
            (stack.enter_context(start_gunicorn(tmp_path / "ratings", ratings_copy, workers=1,
                                                MODEL_NAME="ratings")), ratings_app, "ratings")]
        for server, app, name in servers:
            client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
            client.register_plugin(BasicAuth("caretflow", CLIENT))  # the key as the password
            assert client.is_server_live() and client.is_server_ready()
            assert client.is_model_ready(name) and not client.is_model_ready("nope")
            meta = client.get_model_metadata(name)
            assert meta == app.test_client().get(f"/v2/models/{name}", headers=headers()).json
            cols = columns_of(app, n=25, seed=5)
            inputs = []
            for t in tensors(app, cols):
                tensor = triton.InferInput(t["name"], t["shape"], t["datatype"])
                tensor.set_data_from_numpy(np.array(t["data"], dtype=NUMPY[t["datatype"]]))
                inputs.append(tensor)
            result = client.infer(name, inputs)
            want = predict_answers(app.test_client(), cols)  # same model, in-process
            assert result.as_numpy("prediction").tolist() == [a["prediction"] for a in want]
            second = "probability" if name == "churn" else "upper"
            expected = [a["probability"] if name == "churn" else a["interval"]["upper"]
                        for a in want]
            assert result.as_numpy(second).tolist() == expected
            bad = triton.InferInput(inputs[0].name(), [25], "INT32")
            bad.set_data_from_numpy(np.zeros(25, dtype=np.int32))
            with pytest.raises(InferenceServerException) as err:
                client.infer(name, [bad, *inputs[1:]])
            assert err.value.status() == "400" and "datatype" in err.value.message()
            client.close()
