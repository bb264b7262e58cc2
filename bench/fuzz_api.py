"""schemathesis over every route of ``/openapi.json``: no 5xx, every answer as documented.

The test suite runs it with a few examples per route; this script runs it deeper against
an in-process app (WSGI, no network) serving ``models:/<name>@champion`` of a registry:

    python -m bench.fuzz_api --examples 300 --out bench/results/reliability/fuzz.json
    python -m bench.fuzz_api --tracking-uri sqlite:////abs/mlflow.db --model-name ratings \
        --examples 8 --seed 0 --key admin --out /tmp/fuzz.json

The first failing case raises (its report on stderr, exit status 1, no result written).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

log = logging.getLogger("bench.fuzz_api")
ROOT = Path(__file__).resolve().parent.parent
CLIENT, ADMIN = "fuzz-client-key", "fuzz-admin-key"


def checks() -> list:
    """The checks every response must pass."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [not_a_server_error, status_code_conformance, content_type_conformance,
            response_schema_conformance]


def fuzz(app, max_examples: int = 10, key: str = ADMIN, seed: int | None = 0) -> dict:
    """Fuzz every documented operation of ``app``; raises on the first failing case.

    Args:
        app: the Flask app (called through WSGI).
        max_examples: hypothesis examples per operation and mode (positive, negative).
        key: API key sent with every request (admin by default: every route is reached).
        seed: fixed seed for a reproducible run (None: random).

    Returns:
        ``"<METHOD> <path> (<mode>)"`` -> number of cases sent and status codes seen.
    """
    import schemathesis
    from schemathesis.generation.modes import GenerationMode

    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    report: dict = {}
    for result in schema.get_all_operations():
        op = result.ok()
        for mode in GenerationMode:
            seen = _fuzz_operation(op, mode, max_examples, key, seed)
            report[f"{op.method.upper()} {op.path} ({mode.value})"] = {
                "cases": sum(seen.values()), "statuses": dict(sorted(seen.items()))}
    return report


def _fuzz_operation(op, mode, max_examples: int, key: str, seed: int | None) -> dict[str, int]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as fixed_seed
    from hypothesis.errors import Unsatisfiable

    seen: dict[str, int] = {}

    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), derandomize=seed is not None)
    @given(case=op.as_strategy(generation_mode=mode, headers={"X-API-Key": key}))
    def run(case):
        response = case.call(headers={"X-API-Key": key})
        seen[str(response.status_code)] = seen.get(str(response.status_code), 0) + 1
        case.validate_response(response, checks=checks())

    with contextlib.suppress(Unsatisfiable):  # no negative data (a GET without parameters)
        (fixed_seed(seed)(run) if seed is not None else run)()
    return seen


def main() -> None:
    """CLI: a deep fuzz run against an in-process app over a copy of the registry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", default=os.environ.get(
        "MLFLOW_TRACKING_URI", f"sqlite:///{ROOT / 'mlflow.db'}"))
    parser.add_argument("--model-name", default="churn", help="registered model to serve")
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--seed", type=int, help="fixed seed (default: a random run)")
    parser.add_argument("--key", choices=("admin", "client"), default="admin",
                        help="send an admin key (every route reached) or a client key")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "reliability" / "fuzz.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from app import create_app
    from caretflow.launch import copy_sqlite_store

    with tempfile.TemporaryDirectory(prefix="caretflow-fuzz-") as tmp:
        uri = args.tracking_uri
        if uri.startswith("sqlite:///"):
            uri = copy_sqlite_store(uri, Path(tmp) / "registry")
        app = create_app({"MLFLOW_TRACKING_URI": uri, "MODEL_NAME": args.model_name,
                          "API_KEYS": CLIENT, "ADMIN_API_KEYS": ADMIN, "BACKGROUND": False,
                          "PREDICTION_DB_URL": f"sqlite:///{Path(tmp) / 'predictions.db'}"})
        started = time.monotonic()
        try:
            report = fuzz(app, args.examples, ADMIN if args.key == "admin" else CLIENT,
                          args.seed)
        finally:
            app.extensions["caretflow"].stop()
    result = {"measured_at": time.strftime("%Y-%m-%d %H:%M"), "model_name": args.model_name,
              "examples_per_operation": args.examples, "seed": args.seed, "key": args.key,
              "seconds": round(time.monotonic() - started, 1),
              "server_errors": sum(n for r in report.values()
                                   for status, n in r["statuses"].items() if int(status) >= 500),
              "operations": report, "cases": sum(r["cases"] for r in report.values())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    log.info(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
