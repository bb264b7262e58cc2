"""Where the repository lives (no third-party imports: the server imports this too)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent
CONF_DIR = ROOT / "conf"
