"""``mlflow run . -e main`` as a child process, for tests and benchmarks."""

from __future__ import annotations

import logging
import subprocess
import threading
import time

from caretflow.launch import BIN, ROOT, env_with

log = logging.getLogger(__name__)


def mlflow_run_main(tracking_uri: str, dataset: str = "churn", overrides: str = "",
                    echo: bool = False, **params):
    """Run ``mlflow run . -e main``; return (completed process, wall seconds).

    ``echo`` logs each line the steps write (their progress) as it comes.
    """
    subprocess.run([str(BIN / "python"), "-m", "caretflow.tracking", "ensure-experiment", dataset],
                   cwd=ROOT, env=env_with(tracking_uri), check=True, capture_output=True)
    cmd = [str(BIN / "mlflow"), "run", ".", "-e", "main", "--env-manager", "local",
           "--experiment-name", f"caretflow-{dataset}", "-P", f"dataset={dataset}",
           "-P", f"overrides={overrides}"]
    for key, value in params.items():
        cmd += ["-P", f"{key}={value}"]
    start = time.perf_counter()
    env = {**env_with(tracking_uri), "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    lines: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def relay(stream, name: str) -> None:
        for line in stream:
            lines[name].append(line)
            if echo:
                log.info("%s", line.rstrip())

    readers = [threading.Thread(target=relay, args=(getattr(child, n), n), daemon=True)
               for n in lines]
    for reader in readers:
        reader.start()
    try:
        code = child.wait(timeout=3600)
    except subprocess.TimeoutExpired:
        child.kill()
        raise
    for reader in readers:
        reader.join()
    proc = subprocess.CompletedProcess(cmd, code, "".join(lines["stdout"]),
                                       "".join(lines["stderr"]))
    return proc, time.perf_counter() - start
