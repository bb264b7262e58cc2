"""The real server runs from a copy of ``app/`` and ``caretflow/`` alone: no ``conf/``, no
``steps/``, and Hydra/OmegaConf made unimportable; it still predicts, reports model health
and recommends, learning everything from the models it serves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import requests

from caretflow.launch import BIN, ROOT, ServerProcess, env_with, free_port
from tests.app_helpers import ADMIN, CLIENT, RECORD, copy_registry, headers

pytestmark = pytest.mark.slow
SHADOW = 'raise ImportError("the server must not import {name}")\n'
PROBE = '''
import importlib.util, json, os, sys

_base = {base!r}
exec(compile(open(_base).read(), _base, "exec"))  # the server's own gunicorn settings


def post_request(worker, req, environ, resp):
    """Test probe: what this worker imported, and from where."""
    import app, caretflow
    from caretflow.paths import CONF_DIR

    found = {{"forbidden": sorted(m for m in sys.modules
                                 if m.split(".")[0] in ("hydra", "omegaconf", "steps")),
             "app": app.__file__, "caretflow": caretflow.__file__,
             "steps_importable": importlib.util.find_spec("steps") is not None,
             "conf_exists": CONF_DIR.exists()}}
    with open(os.path.join({out!r}, f"{{os.getpid()}}.json"), "w") as f:
        json.dump(found, f)
'''


def _server(tmp: Path, uri: str, model: str) -> tuple[ServerProcess, Path, Path]:
    """gunicorn from ``tmp/server`` (app/ and caretflow/ only) serving ``model``."""
    root, probes = tmp / "server", tmp / "probes"
    for part in ("app", "caretflow"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("hydra", "omegaconf"):  # first on PYTHONPATH: importing them fails loudly
        (root / name).mkdir()
        (root / name / "__init__.py").write_text(SHADOW.format(name=name))
    probes.mkdir()
    (tmp / "prom").mkdir()
    conf = tmp / "probe.conf.py"
    conf.write_text(PROBE.format(base=str(root / "app" / "gunicorn.conf.py"), out=str(probes)))
    port = free_port()
    env = env_with(uri, PYTHONPATH=root, PORT=port, WORKERS=1, MODEL_NAME=model,
                   API_KEYS=CLIENT, ADMIN_API_KEYS=ADMIN, PROMETHEUS_MULTIPROC_DIR=tmp / "prom",
                   PREDICTION_DB_URL=f"sqlite:///{tmp / 'predictions.db'}",
                   ALIAS_REFRESH_SECONDS=0.5, LIVE_METRICS_SECONDS=0.2)
    command = [str(BIN / "gunicorn"), "-c", str(conf), "app:create_app()"]
    # started in root, not the repo: gunicorn puts its working directory on sys.path
    return ServerProcess("server", command, tmp, env, port, cwd=root).start(), root, probes


def _probed(root: Path, probes: Path) -> None:
    found = [json.loads(p.read_text()) for p in probes.glob("*.json")]
    assert found, "the probe never ran"
    for seen in found:
        assert seen["forbidden"] == [] and not seen["steps_importable"], seen
        assert not seen["conf_exists"], seen
        assert seen["app"].startswith(str(root)) and seen["caretflow"].startswith(str(root))


def test_churn_server_without_conf_predicts_and_reports_health(tiny_registry, tmp_path):
    uri = copy_registry(tiny_registry, tmp_path / "registry")
    server, root, probes = _server(tmp_path, uri, "churn")
    try:
        url = server.url
        records = [{**RECORD, "Age": 20 + i, "true_value": i % 2} for i in range(30)]
        r = requests.post(f"{url}/predict", json={"records": records}, headers=headers(),
                          timeout=30)
        assert r.status_code == 200, r.text
        answer = r.json()["predictions"][0]
        assert 0 <= answer["probability"] <= 1 and 0 < answer["threshold"] < 1
        health = requests.get(f"{url}/model_health", headers=headers(), timeout=30).json()
        served = next(v for v in health["versions"] if v["feedback"] == 30)
        assert served["status"] in ("healthy", "degraded") and "roc_auc" in served["thresholds"]
        assert {"live_tn", "live_fp", "live_fn", "live_tp"} <= set(served["live_metrics"])
        assert set(served["drift"]["features"]) >= {"Age", "Geography"}
        r = requests.post(f"{url}/recommend", json={"user_id": 1}, headers=headers(), timeout=30)
        assert r.status_code == 404 and "not supported" in r.json()["error"]
    finally:
        server.stop()
    _probed(root, probes)


def test_ratings_server_without_conf_recommends(ratings_uri, tmp_path):
    server, root, probes = _server(tmp_path, ratings_uri, "ratings")
    try:
        url = server.url
        r = requests.post(f"{url}/recommend", json={"user_id": 3, "k": 5}, headers=headers(),
                          timeout=30)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert len(items) == 5 and all(1 <= i["interval"]["lower"] <= i["predicted_rating"]
                                       <= i["interval"]["upper"] <= 5 for i in items)
        truths = [{"prediction_id": i["prediction_id"], "true_value": 4.0} for i in items]
        assert requests.post(f"{url}/feedback", json=truths, headers=headers(),
                             timeout=30).status_code == 201
        health = requests.get(f"{url}/model_health", headers=headers(), timeout=30).json()
        version = health["versions"][0]
        assert version["feedback"] == 5 and version["interval"]["level"] == 0.9
        assert "live_interval_coverage" in version["live_metrics"]
        r = requests.post(f"{url}/recommend", json={"user_id": 3, "items": [999998, 999999]},
                          headers=headers(), timeout=30)
        assert r.status_code == 422 and "none of the items" in r.json()["error"]
    finally:
        server.stop()
    _probed(root, probes)
