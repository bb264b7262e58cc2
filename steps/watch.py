"""The retrain watcher: ``python -m steps.watch --model <name> [--once] [--dry-run]``.

Polls the server's ``/model_health`` and starts ``mlflow run . -e retrain`` when the
champion is ``degraded`` (or its inputs drift) for ``watch.consecutive`` checks in a row, at
least ``watch.min_new_labels`` labels arrived since the last retrain and the
``watch.cooldown_minutes`` cool-down has passed. One log line per check with its reason;
``--once`` checks once (for cron), ``--dry-run`` logs decisions without acting or writing
state. A lock in ``watch.state_dir`` keeps a second retrain from starting while one runs,
across processes. Trailing arguments are Hydra overrides of the ``watch`` group, e.g.
``watch.consecutive=3 watch.retrain.overrides="profile=quick retrain.promote=direct"``.
The API key: ``--api-key``, else the first of ``API_KEYS``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from caretflow.config import compose, split_overrides
from caretflow.watcher.run import Server, Watcher


def _parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Start retrain when the champion degrades.")
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--once", action="store_true", help="check once and exit (cron)")
    parser.add_argument("--dry-run", action="store_true", help="log decisions only")
    parser.add_argument("--url", default="", help="server URL (default: watch.server_url)")
    parser.add_argument("--api-key", default="", help="client key (default: first of API_KEYS)")
    parser.add_argument("--prediction-db", default="",
                        help="passed to retrain (default: its own, PREDICTION_DB_URL)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the watch group")
    return parser.parse_intermixed_args(argv)


def main(argv=None) -> int:
    """Run the watcher; exit code 0 (a failed retrain is logged, not an exit code)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(name)s %(message)s")
    args = _parse(argv)
    watch = compose(["+watch=default", *split_overrides(args.overrides)]).watch
    key = args.api_key or os.environ.get("API_KEYS", "").split(",")[0].strip() or None
    server = Server(args.url or watch.server_url, key, float(watch.request_timeout_seconds))
    Watcher(args.model, watch, server, args.prediction_db or None, args.dry_run).run(args.once)
    return 0


if __name__ == "__main__":
    sys.exit(main())
