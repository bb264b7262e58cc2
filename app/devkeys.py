"""Development API keys: ``python -m app.devkeys`` makes sure they exist and prints how to call.

The keys live in ``.caretflow/dev_keys.env`` (git-ignored by its own ``.gitignore``);
``make serve`` sources that file before starting gunicorn unless ``API_KEYS`` is set.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from pathlib import Path

from caretflow.paths import ROOT

log = logging.getLogger("app.devkeys")
KEY_DIR = ROOT / ".caretflow"
KEY_FILE = KEY_DIR / "dev_keys.env"


def ensure_keys(path: Path = KEY_FILE) -> dict[str, str]:
    """Create the key file once (client and admin key); return its values.

    Args:
        path: the env file to create or read.

    Returns:
        ``{"API_KEYS": ..., "ADMIN_API_KEYS": ...}``
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    if not path.exists():
        text = (f"API_KEYS=dev-{secrets.token_urlsafe(24)}\n"
                f"ADMIN_API_KEYS=admin-{secrets.token_urlsafe(24)}\n")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def banner(keys: dict[str, str]) -> str:
    """Where things are, which key to use, and a ready curl line."""
    port = os.environ.get("PORT", "8000")
    api = f"http://127.0.0.1:{port}"
    client = os.environ.get("API_KEYS", keys["API_KEYS"]).split(",")[0]
    admin = os.environ.get("ADMIN_API_KEYS", keys["ADMIN_API_KEYS"]).split(",")[0]
    record = ('{"CreditScore": 619, "Geography": "France", "Gender": "Female", "Age": 42, '
              '"Tenure": 2, "Balance": 0.0, "NumOfProducts": 1, "HasCrCard": 1, '
              '"IsActiveMember": 1, "EstimatedSalary": 101348.88}')
    return "\n".join([
        "caretflow serving",
        "  MLflow UI : http://127.0.0.1:5000  (run `make ui`)",
        f"  API       : {api}",
        f"  API docs  : {api}/docs   (OpenAPI: {api}/openapi.json)",
        f"  client key: {client}",
        f"  admin key : {admin}   (for /load_version)",
        f"  keys file : {KEY_FILE.relative_to(ROOT)}",
        "  try:",
        f"    curl -s -X POST {api}/predict -H 'Content-Type: application/json' \\",
        f"      -H 'X-API-Key: {client}' -d '{record}'",
    ])


def main() -> None:
    """Create the keys if needed and print the banner."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    log.info(banner(ensure_keys()))


if __name__ == "__main__":
    main()
