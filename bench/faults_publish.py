"""Copy a registry (versions, artifacts, test metrics, tags, aliases) to a tracking server.

Usage: ``python -m bench.faults_publish --src sqlite:///mlflow.db --dst http://127.0.0.1:5000``
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time

from caretflow.launch import BIN, ROOT
from caretflow.launch import env_with as child_env


def publish(src_uri: str, dst_uri: str, name: str = "churn") -> dict[str, str]:
    """Copy every version of ``name`` (artifacts, test metrics, tags, aliases) to ``dst_uri``.

    Runs in a subprocess: ``mlflow.set_tracking_uri`` is process-global.

    Returns:
        The destination's aliases (alias -> version).
    """
    out = subprocess.run([str(BIN / "python"), "-m", "bench.faults_publish", "--src",
                          src_uri, "--dst", dst_uri, "--name", name], cwd=ROOT, env=child_env(),
                         capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _publish_here(src_uri: str, dst_uri: str, name: str) -> dict[str, str]:
    import tempfile

    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    src, dst = MlflowClient(src_uri), MlflowClient(dst_uri)
    exp = dst.create_experiment(f"caretflow-{name}-{int(time.time() * 1000)}")
    dst.create_registered_model(name)
    mapping = {}
    for mv in sorted(src.search_model_versions(f"name = '{name}'"), key=lambda m: int(m.version)):
        metrics = src.get_run(mv.run_id).data.metrics
        run = dst.create_run(exp, tags={"mlflow.runName": mv.tags.get("version_name", "v")})
        now = int(time.time() * 1000)
        dst.log_batch(run.info.run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()
                                                if k.startswith("test_")])
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.set_tracking_uri(src_uri)
            local = mlflow.artifacts.download_artifacts(f"models:/{name}/{mv.version}",
                                                        dst_path=tmp)
            mlflow.set_tracking_uri(dst_uri)
            dst.log_artifacts(run.info.run_id, local, "model")
        dst.set_terminated(run.info.run_id)
        new = dst.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id,
                                       tags=dict(mv.tags))
        mapping[str(mv.version)] = str(new.version)
    for alias, version in src.get_registered_model(name).aliases.items():
        dst.set_registered_model_alias(name, alias, mapping[str(version)])
    return {a: str(v) for a, v in dst.get_registered_model(name).aliases.items()}


def main() -> None:
    """CLI: copy a registry into another tracking server; prints its aliases as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--src", required=True)
    parser.add_argument("--dst", required=True)
    parser.add_argument("--name", default="churn")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sys.stdout.write(json.dumps(_publish_here(args.src, args.dst, args.name)) + "\n")


if __name__ == "__main__":
    main()
