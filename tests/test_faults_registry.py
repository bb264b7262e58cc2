"""Fault: the serving alias moves to a version whose artifacts are missing or corrupt.

The old version keeps serving; /health and /versions say why, without local paths.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest

from caretflow.launch import wait_until as wait_for
from tests.app_helpers import RECORD, headers


def _damaged_copy(st, tmp: Path, how: str) -> str:
    """Register a copy of the default version's model with its model file damaged."""
    local = Path(mlflow.artifacts.download_artifacts(
        f"models:/churn/{st.store.default.version}", dst_path=str(tmp / "download")))
    target = tmp / f"model-{how}"
    shutil.copytree(local, target)
    model_file = target / "model.skops"
    if how == "missing":
        model_file.unlink()
    elif how == "corrupt":
        model_file.write_bytes(model_file.read_bytes()[: 200] + b"\x00garbage")
    else:  # a pickle instead of skops: refused by the format check
        text = (target / "MLmodel").read_text().replace("serialization_format: skops",
                                                         "serialization_format: cloudpickle")
        (target / "MLmodel").write_text(text)
    mv = st.store.client.create_model_version("churn", str(target), st.store.default.run_id)
    return str(mv.version)


@pytest.mark.parametrize("how", ["missing", "corrupt", "not_skops"])
def test_alias_moved_to_a_broken_version_keeps_the_old_one(fresh_app, tmp_path, how):
    st, c = fresh_app.extensions["caretflow"], fresh_app.test_client()
    before = st.store.default.version
    broken = _damaged_copy(st, tmp_path, how)
    st.store.client.set_registered_model_alias("churn", "champion", broken)
    health = wait_for(lambda: (c.get("/health").json or {}).get("load_errors", {}).get(broken)
                      and c.get("/health"), timeout=10)
    assert health, "the load error never showed on /health"
    body = health.json
    assert health.status_code == 200 and body["ready"]
    assert body["alias_target"] == broken and body["default_version"] == before
    reason = body["load_errors"][broken]
    assert reason and str(tmp_path) not in reason and "Traceback" not in reason
    listing = c.get("/versions", headers=headers()).json
    row = next(v for v in listing["versions"] if v["version"] == broken)
    assert row["load_error"] == reason and not row["default"]
    answer = c.post("/predict", json=RECORD, headers=headers()).json
    assert answer["model_version"] == before
